"""Optimizely export-credentials API: a personal access token -> temporary AWS credentials.

``GET {api}/v2/export/credentials?duration=1h`` with ``Authorization: Bearer <PAT>``
returns ``{"credentials": {accessKeyId, secretAccessKey, sessionToken, expiration(ms)},
"s3Path": "s3://optimizely-events-data/v1/account_id=123"}`` (reference §3).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from botocore.credentials import RefreshableCredentials
from dagster import ConfigurableResource
from pydantic import Field, field_validator

from optimizely_assets.e3.layout import account_id_from_s3_path, split_s3_path
from optimizely_assets.resources.bounded_http import bounded_get, get_with_retries

MAX_BODY_BYTES = 64 * 1024  # an answer is a few hundred bytes; an endless one is cut here

_DURATION_RE = re.compile(r"^(?:(\d+)[mM]|1[hH])$")


class CredentialsError(RuntimeError):
    """The credentials API refused or answered something unusable. Never carries the token."""


@dataclass(frozen=True)
class ExportCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime
    bucket: str
    prefix: str  # e.g. v1/account_id=123, no trailing slash
    account_id: str

    def __repr__(self) -> str:  # keep keys out of any log line that reprs this
        return f"ExportCredentials(account_id={self.account_id!r}, expiration={self.expiration.isoformat()})"


def parse_credentials_response(body: object) -> ExportCredentials:
    """Validate the API answer as oevents does: every field present and non-null."""
    if not isinstance(body, dict):
        raise CredentialsError("Optimizely credentials API answered with a non-object body")
    creds = body.get("credentials")
    s3_path = body.get("s3Path")
    required = ("accessKeyId", "secretAccessKey", "sessionToken", "expiration")
    missing = [k for k in required if not isinstance(creds, dict) or creds.get(k) in (None, "")]
    if not s3_path:
        missing.append("s3Path")
    if missing:
        raise CredentialsError("Optimizely credentials API response is missing " + ", ".join(missing))
    bucket, prefix = split_s3_path(str(s3_path))
    expiration_ms = int(creds["expiration"])
    if expiration_ms < 10**11:  # before 1973 in ms: this is seconds, not the documented epoch ms
        raise CredentialsError(
            f"Optimizely credentials API answered expiration={expiration_ms}, which reads as seconds; "
            "the API documents epoch milliseconds"
        )
    if expiration_ms / 1000 <= time.time():
        raise CredentialsError(
            "Optimizely credentials API answered credentials that already expired at "
            f"{dt.datetime.fromtimestamp(expiration_ms / 1000, tz=dt.timezone.utc).isoformat()}"
        )
    return ExportCredentials(
        access_key_id=str(creds["accessKeyId"]),
        secret_access_key=str(creds["secretAccessKey"]),
        session_token=str(creds["sessionToken"]),
        expiration=dt.datetime.fromtimestamp(expiration_ms / 1000, tz=dt.timezone.utc),
        bucket=bucket,
        prefix=prefix,
        account_id=account_id_from_s3_path(str(s3_path)),
    )


def duration_seconds(duration: str) -> int:
    match = _DURATION_RE.match(duration)
    if not match:
        raise ValueError(f"duration must be 15m..60m or 1h, got {duration!r}")
    minutes = int(match.group(1)) if match.group(1) else 60
    if not 15 <= minutes <= 60:
        raise ValueError(f"duration must be 15m..60m or 1h, got {duration!r}")
    return minutes * 60


class OptimizelyCredentialsResource(ConfigurableResource):
    """Exchanges an Optimizely personal access token for temporary export credentials."""

    personal_access_token: str = Field(description="Optimizely PAT; set from EnvVar('OPTIMIZELY_PAT').")
    api_url: str = Field(
        default="https://api.optimizely.com", description="Base URL of the Optimizely REST API."
    )
    duration: str = Field(default="1h", description="Credential lifetime to ask for: 15m..60m or 1h.")
    refresh_margin_seconds: int = Field(
        default=300, description="Refresh this long before expiry (capped to a third of the lifetime)."
    )
    timeout_seconds: float = Field(
        default=60.0, description="Total deadline of one credentials call, retries included."
    )
    attempts: int = Field(default=4, description="Attempts on 5xx, 429 and network errors.")

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    def fetch(self) -> ExportCredentials:
        """One credentials call: retried on 5xx, 429 and network errors, within a total deadline."""
        url = f"{self.api_url.rstrip('/')}/v2/export/credentials"
        token = self.personal_access_token.strip()
        if not token or any(c.isspace() or ord(c) < 32 for c in token):
            raise CredentialsError(
                "OPTIMIZELY_PAT is empty or contains whitespace inside it; paste the token alone"
            )

        def send(remaining: float) -> tuple[int, bytes, dict]:
            return bounded_get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                params={"duration": self.duration},
                seconds=remaining,
                max_bytes=MAX_BODY_BYTES,
            )

        deadline = time.monotonic() + self.timeout_seconds
        answer = get_with_retries(send, deadline, self.attempts, self.timeout_seconds)
        if isinstance(answer, str):
            raise CredentialsError(f"Optimizely credentials API at {url} {answer}")
        status, body = answer
        if status == 200:
            return _parse_json(url, body)
        if status in (401, 403):
            raise CredentialsError(
                f"Optimizely credentials API at {url} answered HTTP {status} "
                "(check OPTIMIZELY_PAT and that the account has the events export)"
            )
        raise CredentialsError(f"Optimizely credentials API at {url} answered HTTP {status}")

    def refreshable(self) -> tuple[RefreshableCredentials, ExportCredentials]:
        """botocore credentials that call the API again shortly before they expire."""
        first = self.fetch()
        margin = min(self.refresh_margin_seconds, duration_seconds(self.duration) // 3)

        def metadata(c: ExportCredentials) -> dict:
            return {
                "access_key": c.access_key_id,
                "secret_key": c.secret_access_key,
                "token": c.session_token,
                "expiry_time": c.expiration.isoformat(),
            }

        creds = RefreshableCredentials.create_from_metadata(
            metadata=metadata(first),
            refresh_using=lambda: metadata(self.fetch()),
            method="optimizely-export-credentials",
            advisory_timeout=margin,
            mandatory_timeout=max(margin // 2, 1),
        )
        return creds, first


def _parse_json(url: str, body: bytes) -> ExportCredentials:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        raise CredentialsError(f"Optimizely credentials API at {url} answered non-JSON") from None
    return parse_credentials_response(data)
