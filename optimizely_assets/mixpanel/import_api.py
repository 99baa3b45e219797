"""Mixpanel's Import API (`POST {host}/import?strict=1&project_id=...`), as its documentation states it.

Why not Mixpanel's official Python library (`mixpanel` 5.x): its consumers post form-encoded
``data=`` at most 50 events a request (``BufferedConsumer`` caps ``max_size`` at 50), without
gzip, and turn a strict-mode 400 into one ``MixpanelException``, losing ``failed_records`` (which
events failed, and why). The feed needs 2,000-event gzip batches and per-event rejections for its
dead-letter table, so it speaks the documented HTTP API with requests:
- auth: a service account (HTTP Basic, username and secret) with ``project_id`` in the query;
- limits: 2,000 events and 10 MB of uncompressed JSON per request, 1 MB per event
  (docs.mixpanel.com/troubleshooting/errors/413-payload-too-large); gzip saves egress only;
- 200 ``{"code": 200, "num_records_imported": n}``; 400 with ``failed_records`` [{index, insert_id,
  field, message}]: the others were imported; 401/403: bad credentials; 413: split the batch;
  429 and 5xx: retry with backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from dataclasses import dataclass, field

import requests
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

MAX_EVENTS = 2_000
MAX_BYTES = 10 * 1024 * 1024  # uncompressed JSON per request
MAX_EVENT_BYTES = 1024 * 1024
HOSTS = {
    "us": "https://api.mixpanel.com",
    "eu": "https://api-eu.mixpanel.com",
    "in": "https://api-in.mixpanel.com",
}


class MixpanelError(RuntimeError):
    pass


@dataclass
class Sent:
    accepted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # ($insert_id, reason)
    requests: int = 0
    retried_batches: int = 0
    split_batches: int = 0

    def add(self, other: Sent) -> Sent:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.requests += other.requests
        self.retried_batches += other.retried_batches
        self.split_batches += other.split_batches
        return self


class MixpanelImport(ConfigurableResource):
    project_id: str = Field(description="Mixpanel project id (MIXPANEL_PROJECT_ID).")
    username: str = Field(description="Service account username (MIXPANEL_SERVICE_ACCOUNT_USERNAME).")
    secret: str = Field(description="Service account secret: EnvVar('MIXPANEL_SERVICE_ACCOUNT_SECRET').")
    api_host: str = Field(
        default=HOSTS["us"], description="US, EU (api-eu) or India (api-in) residency host."
    )
    timeout_seconds: float = 60.0
    attempts: int = Field(default=8, description="Tries of one batch on 429, 5xx and network errors.")
    max_wait_seconds: float = Field(default=120.0, description="Longest wait between two tries.")

    _session: requests.Session | None = PrivateAttr(default=None)

    def _post(self, body: bytes) -> requests.Response:
        if self._session is None:
            self._session = requests.Session()
        return self._session.post(
            f"{self.api_host.rstrip('/')}/import",
            params={"strict": "1", "project_id": self.project_id},
            data=gzip.compress(body, 6),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            auth=(self.username, self.secret),
            timeout=self.timeout_seconds,
        )

    def send(self, encoded: list[bytes], insert_ids: list[str]) -> Sent:
        """One batch (each event already JSON-encoded): accepted, rejected with reasons, retries."""
        out = Sent()
        body = b"[" + b",".join(encoded) + b"]"
        for attempt in range(1, self.attempts + 1):
            out.requests += 1
            try:
                response = self._post(body)
            except requests.RequestException as exc:
                wait, why = None, f"{type(exc).__name__}"
            else:
                status = response.status_code
                if status == 200:
                    out.accepted += len(encoded)
                    return out
                if status == 400:
                    return out.add(self._partial(response, insert_ids))
                if status in (401, 403):
                    raise MixpanelError(
                        f"{self.api_host}/import answered {status}: the service account "
                        "(MIXPANEL_SERVICE_ACCOUNT_USERNAME / _SECRET) is not accepted for project "
                        f"{self.project_id}"
                    )
                if status == 413:
                    return out.add(self._split(encoded, insert_ids))
                if status != 429 and status < 500:
                    raise MixpanelError(f"{self.api_host}/import answered {status}: {response.text[:300]}")
                wait, why = _retry_after(response), f"HTTP {status}"
            if attempt == self.attempts:
                raise MixpanelError(f"{self.api_host}/import: {why} after {attempt} tries of one batch")
            if attempt == 1:
                out.retried_batches += 1
            backoff = min(self.max_wait_seconds, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
            time.sleep(min(self.max_wait_seconds, wait if wait is not None else backoff))
        raise AssertionError("unreachable")

    def _partial(self, response: requests.Response, insert_ids: list[str]) -> Sent:
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        failed = answer.get("failed_records")
        if not isinstance(failed, list):
            raise MixpanelError(
                f"{self.api_host}/import answered 400 without failed_records: {response.text[:300]}"
            )
        rejected = []
        for record in failed:
            index = record.get("index")
            iid = record.get("insert_id") or (insert_ids[index] if isinstance(index, int) else "")
            rejected.append((str(iid), f"{record.get('field', '')}: {record.get('message', '')}".strip(": ")))
        imported = answer.get("num_records_imported")
        accepted = int(imported) if isinstance(imported, int) else len(insert_ids) - len(rejected)
        return Sent(accepted=accepted, rejected=rejected, requests=0)

    def _split(self, encoded: list[bytes], insert_ids: list[str]) -> Sent:
        if len(encoded) == 1:
            return Sent(rejected=[(insert_ids[0], "payload too large for one request (413)")])
        half = len(encoded) // 2
        out = Sent(split_batches=1)
        out.add(self.send(encoded[:half], insert_ids[:half]))
        return out.add(self.send(encoded[half:], insert_ids[half:]))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), default=str, ensure_ascii=False).encode()
