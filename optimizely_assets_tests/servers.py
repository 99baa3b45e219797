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


class _Loopback:
    """Serve a handler on 127.0.0.1 in a daemon thread; ``stop`` shuts it down."""

    _server: ThreadingHTTPServer | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> int:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self._server.server_address[1]

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FakeOptimizelyAPI(_Loopback):
    """GET /v2/export/credentials?duration=.. with ``Authorization: Bearer <PAT>``."""

    token: str
    s3_path: str
    access_key_id: str = "ASIAOPTIMIZELYTEST01"
    secret_access_key: str = "optimizely-test-secret-key"
    lifetime_seconds: float | None = None  # None: as asked by `duration`
    calls: list[dict] = field(default_factory=list)
    status_override: int | None = None
    statuses: list[int] = field(default_factory=list)  # answered (one each) before any 200
    trickle_seconds: float = 0.0  # > 0: send the answer one byte at a time, this far apart
    expiration_ms: int | None = None  # answer this expiration instead of now + lifetime
    port: int = 0

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
                api.calls.append(
                    {"path": parsed.path, "duration": duration, "auth_ok": auth == f"Bearer {api.token}"}
                )
                if parsed.path != "/v2/export/credentials":
                    return self._send(404, {"message": "not found"})
                if api.status_override:
                    return self._send(api.status_override, {"message": "error"})
                if api.statuses:
                    return self._send(api.statuses.pop(0), {"message": "try again"})
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
                            "expiration": api.expiration_ms or int((time.time() + seconds) * 1000),
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
                if api.trickle_seconds:
                    for i in range(len(data)):
                        try:
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(api.trickle_seconds)
                    return
                self.wfile.write(data)

        self.port = self._serve(Handler)
        return self


def start_bigquery_emulator(workdir, gcs_local_root) -> tuple[str, object]:
    """Start bqemulator as its own process on 127.0.0.1; returns (rest_url, process).

    Its DuckDB must find the spatial extension offline: we lay the wheel-shipped file out
    in DuckDB's extension directory under a private HOME.
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import duckdb
    import duckdb_extension_spatial
    import requests

    version = f"v{duckdb.__version__}"
    platform = duckdb.connect().execute("SELECT platform FROM pragma_platform()").fetchone()[0]
    shipped = (
        Path(duckdb_extension_spatial.__file__).parent / "extensions" / version / "spatial.duckdb_extension"
    )
    home = Path(workdir) / "home"
    ext_dir = home / ".duckdb" / "extensions" / version / platform
    ext_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped, ext_dir)
    rest, grpc = free_port(), free_port()
    exe = Path(sys.executable).parent / "bqemulator"
    proc = subprocess.Popen(
        [
            str(exe),
            "start",
            "--rest-host",
            "127.0.0.1",
            "--rest-port",
            str(rest),
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            str(grpc),
            "--log-level",
            "error",
        ],
        env={**os.environ, "HOME": str(home), "BQEMU_GCS_LOCAL_ROOT": str(gcs_local_root)},
        stdout=subprocess.DEVNULL,
        stderr=open(Path(workdir) / "bqemulator.log", "wb"),
    )
    url = f"http://127.0.0.1:{rest}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bqemulator exited: {(Path(workdir) / 'bqemulator.log').read_text()[-2000:]}")
        try:
            requests.get(url, timeout=1)
            return url, proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("bqemulator did not start within 90 s")


class FaultProxy(_Loopback):
    """A loopback HTTP proxy in front of an emulator that fails the first try of every request.

    Each distinct (method, path, Range) first gets ``status`` with the service's error body
    (S3 ``SlowDown`` XML or a GCS JSON error); the retry goes through. Nothing passes
    unless the client retries.
    """

    def __init__(self, target: str, status: int = 503, flavour: str = "s3") -> None:
        self.target = target.rstrip("/")
        self.status = status
        self.flavour = flavour
        self.injected = 0
        self.forwarded = 0
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self.url = ""

    def start(self) -> FaultProxy:
        import requests

        proxy = self
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                # The body is part of a request's identity: uploads to one URL differ by content.
                ident = (self.command, self.path, self.headers.get("Range", ""), hash(body))
                with proxy._lock:
                    first = ident not in proxy._seen
                    proxy._seen.add(ident)
                    if first:
                        proxy.injected += 1
                    else:
                        proxy.forwarded += 1
                if first:
                    if proxy.flavour == "s3":
                        err = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                        ctype = "application/xml"
                    else:
                        err = json.dumps(
                            {"error": {"code": proxy.status, "message": "backendError"}}
                        ).encode()
                        ctype = "application/json"
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(err)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")
                }
                upstream = session.request(
                    self.command,
                    proxy.target + self.path,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    stream=True,
                )
                data = b"" if self.command == "HEAD" else upstream.raw.read(decode_content=False)
                self.send_response(upstream.status_code)
                for k, v in upstream.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                if "content-encoding" in {k.lower() for k in upstream.headers}:
                    self.send_header("Content-Encoding", upstream.headers["Content-Encoding"])
                self.send_header(
                    "Content-Length",
                    upstream.headers.get("Content-Length", "0") if self.command == "HEAD" else str(len(data)),
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.url = f"http://127.0.0.1:{self._serve(Handler)}"
        return self
