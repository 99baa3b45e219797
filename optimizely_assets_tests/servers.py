"""Local servers the tests run against, all bound to 127.0.0.1.

- moto's S3 server (real boto3 wire protocol),
- gcp-storage-emulator (real google-cloud-storage wire protocol),
- a stand-in for Optimizely's export-credentials API, which has no emulator; it answers
  exactly the documented shapes (reference §3).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeOptimizelyAPI:
    """GET /v2/export/credentials?duration=.. with ``Authorization: Bearer <PAT>``."""

    token: str
    s3_path: str
    access_key_id: str = "ASIAOPTIMIZELYTEST01"
    secret_access_key: str = "optimizely-test-secret-key"
    lifetime_seconds: float | None = None  # None: as asked by `duration`
    calls: list[dict] = field(default_factory=list)
    status_override: int | None = None
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOptimizelyAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                auth = self.headers.get("Authorization", "")
                duration = parse_qs(parsed.query).get("duration", ["1h"])[0]
                api.calls.append({"path": parsed.path, "duration": duration, "auth_ok": auth == f"Bearer {api.token}"})
                if parsed.path != "/v2/export/credentials":
                    return self._send(404, {"message": "not found"})
                if api.status_override:
                    return self._send(api.status_override, {"message": "error"})
                if auth != f"Bearer {api.token}":
                    return self._send(401, {"code": "UNAUTHORIZED", "message": "Invalid token"})
                seconds = api.lifetime_seconds
                if seconds is None:
                    seconds = 3600 if duration.lower() == "1h" else int(duration[:-1]) * 60
                n = len(api.calls)
                self._send(
                    200,
                    {
                        "credentials": {
                            "accessKeyId": f"{api.access_key_id}{n:02d}"[-20:],
                            "secretAccessKey": f"{api.secret_access_key}-{n}",
                            "sessionToken": f"optimizely-session-token-{n}",
                            "expiration": int((time.time() + seconds) * 1000),
                        },
                        "s3Path": api.s3_path,
                    },
                )

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
