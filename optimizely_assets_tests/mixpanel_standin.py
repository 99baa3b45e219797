"""A stand-in for Mixpanel's Import API on 127.0.0.1, answering as its documentation says.

`POST /import?strict=1&project_id=P`, HTTP Basic with a service account, JSON array body, gzip
allowed. 200 ``{"code": 200, "num_records_imported": n, "status": "OK"}``; 400 with
``failed_records`` [{index, insert_id, field, message}] for events that fail validation (no event
name, a placeholder distinct_id, a time before 1971 or more than an hour ahead, a bad $insert_id),
the others imported; 401 for other credentials; 413 past the body limit; 429 with Retry-After when
told to. Imported events are kept by (event, distinct_id, time, $insert_id): Mixpanel's deduplication.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PLACEHOLDERS = {
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "undefined",
    "00000000-0000-0000-0000-000000000000",
}
INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")


class MixpanelStandIn:
    def __init__(self, project_id: str = "4242", username: str = "sa.feed", secret: str = "sa-secret-xyz"):
        self.project_id, self.username, self.secret = project_id, username, secret
        self.max_bytes = 10 * 1024 * 1024
        self.throttle = 0  # answer this many requests with 429 first
        self.retry_after = "0"
        self.fail_5xx = 0
        self.requests: list[dict] = []  # per request: events, gzip, status
        self.imported: dict[tuple, dict] = {}
        self.keep = True  # keep imported events (tests); a bench only counts them
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                standin.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def _answer(
        self, h: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        zipped = h.headers.get("Content-Encoding") == "gzip"
        body = gzip.decompress(raw) if zipped else raw
        record = {"gzip": zipped, "bytes": len(body), "events": 0, "status": None}
        with self.lock:
            self.requests.append(record)
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
        if (
            url.path != "/import"
            or query.get("project_id") != [self.project_id]
            or query.get("strict") != ["1"]
        ):
            record["status"] = 400
            return self._answer(h, 400, {"code": 400, "error": "bad request", "status": "Bad Request"})
        if h.headers.get("Authorization") != expected:
            record["status"] = 401
            return self._answer(h, 401, {"code": 401, "error": "Unauthorized", "status": "Unauthorized"})
        with self.lock:
            throttled = self.throttle > 0
            self.throttle -= throttled
            broken = self.fail_5xx > 0
            self.fail_5xx -= broken
        if throttled:
            record["status"] = 429
            return self._answer(
                h,
                429,
                {"code": 429, "error": "too many requests", "status": "Too Many Requests"},
                {"Retry-After": self.retry_after},
            )
        if broken:
            record["status"] = 503
            return self._answer(
                h, 503, {"code": 503, "error": "unavailable", "status": "Service Unavailable"}
            )
        if len(body) > self.max_bytes:
            record["status"] = 413
            return self._answer(
                h,
                413,
                {
                    "code": 413,
                    "error": f"request exceeds max limit of {self.max_bytes} bytes",
                    "status": "Request Entity Too Large",
                },
            )
        events = json.loads(body)
        record["events"] = len(events)
        failed = []
        now_ms = time.time() * 1000
        for i, e in enumerate(events):
            p = e.get("properties", {})
            iid = p.get("$insert_id", "")
            t = p.get("time")
            problem = None
            if not e.get("event"):
                problem = ("event", "'event' must be a non-empty string")
            elif str(p.get("distinct_id", "")).lower() in PLACEHOLDERS:
                problem = ("properties.distinct_id", "'properties.distinct_id' is invalid")
            elif not isinstance(t, int) or t < 31_536_000_000 or t > now_ms + 3_600_000:
                problem = (
                    "properties.time",
                    "'properties.time' is invalid: must be after 1971-01-01 and at most one hour ahead",
                )
            elif not INSERT_ID.match(str(iid)):
                problem = ("properties.$insert_id", "'properties.$insert_id' is invalid")
            if problem:
                failed.append({"index": i, "insert_id": iid, "field": problem[0], "message": problem[1]})
                continue
            if self.keep:
                with self.lock:
                    self.imported[(e["event"], p.get("distinct_id"), t, iid)] = e
        record["status"] = 400 if failed else 200
        if failed:
            return self._answer(
                h,
                400,
                {
                    "code": 400,
                    "error": "some data points in the request failed validation",
                    "status": "Bad Request",
                    "num_records_imported": len(events) - len(failed),
                    "failed_records": failed,
                },
            )
        return self._answer(h, 200, {"code": 200, "num_records_imported": len(events), "status": "OK"})


if __name__ == "__main__":  # for bench/: serve in a process of its own, until killed
    import sys

    server = MixpanelStandIn(*sys.argv[1:4])
    server.keep = False  # a bench sends millions: count them, keep none
    print(server.url, flush=True)
    threading.Event().wait()
