"""Optimizely's two APIs cannot hold a call past its deadline, fill memory, or fail on a 429."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from optimizely_assets.resources.experiment_catalog import RestExperimentCatalog
from optimizely_assets.resources.optimizely_auth import CredentialsError, OptimizelyCredentialsResource
from optimizely_assets_tests.servers import _Loopback


class Misbehaving(_Loopback):
    """Answers every GET as ``mode`` says: endless, trickle, or a list of statuses then a JSON body."""

    def __init__(self, mode: str, statuses: list[int] | None = None, body: dict | None = None):
        self.mode, self.statuses, self.body, self.calls = mode, list(statuses or []), body or {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                server.calls.append((time.monotonic(), self.path))
                try:
                    if server.mode == "endless":
                        self.send_response(200)
                        self.end_headers()
                        while True:
                            self.wfile.write(b"x" * 65536)
                    elif server.mode == "trickle":
                        self.send_response(200)
                        self.end_headers()
                        while True:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.05)
                    else:
                        status = server.statuses.pop(0) if server.statuses else 200
                        data = json.dumps(server.body if status == 200 else {"message": "slow down"}).encode()
                        self.send_response(status)
                        if status == 429:
                            self.send_header("Retry-After", "1")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                except OSError:
                    return

        self.url = f"http://127.0.0.1:{self._serve(Handler)}"


@pytest.fixture
def serve():
    servers = []

    def start(*args, **kw) -> Misbehaving:
        servers.append(Misbehaving(*args, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def readers() -> int:
    return sum(t.name == "optimizely-http" for t in threading.enumerate())


def wait_for_no_readers(seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while readers() and time.monotonic() < end:
        time.sleep(0.1)
    return readers() == 0


def test_an_endless_credentials_answer_is_cut_at_the_cap_and_its_reader_stops(serve):
    server = serve("endless")
    resource = OptimizelyCredentialsResource(
        personal_access_token="pat", api_url=server.url, timeout_seconds=60
    )
    start = time.monotonic()
    with pytest.raises(CredentialsError, match="answered more than 65,536 bytes"):
        resource.fetch()
    assert time.monotonic() - start < 30  # at the cap, long before the deadline
    assert wait_for_no_readers()


def test_a_trickling_answer_ends_at_the_deadline_and_nothing_reads_on(serve):
    server = serve("trickle")  # a byte every 50 ms: every socket read is in time, the answer never is
    resource = OptimizelyCredentialsResource(
        personal_access_token="pat", api_url=server.url, timeout_seconds=1.5
    )
    start = time.monotonic()
    with pytest.raises(CredentialsError, match="no complete answer within 1.5 s"):
        resource.fetch()
    assert time.monotonic() - start < 6  # 1.5 s, and a loaded machine's slack
    assert wait_for_no_readers(), "a thread went on reading after the deadline"


def test_the_rest_lookup_honours_retry_after_on_429_and_returns_the_names(serve):
    body = {"name": "Checkout", "variations": [{"variation_id": 1, "name": "A", "weight": 5000}]}
    server = serve("statuses", statuses=[429, 503], body=body)
    catalog = RestExperimentCatalog(personal_access_token="pat", api_url=server.url, timeout_seconds=30)
    rows, errors = catalog.lookup({"42": ["1"]})
    assert errors == [] and [(r.experiment_name, r.variation_name) for r in rows] == [("Checkout", "A")]
    (t0, _), (t1, _), _ = server.calls
    assert t1 - t0 >= 0.9  # the server's Retry-After: 1, not a shorter backoff


def test_the_rest_lookup_has_one_deadline_for_every_experiment(serve):
    server = serve("trickle")
    catalog = RestExperimentCatalog(personal_access_token="pat", api_url=server.url, timeout_seconds=2)
    start = time.monotonic()
    rows, errors = catalog.lookup({str(i): ["1"] for i in range(5)})
    assert time.monotonic() - start < 6  # 2 s, and a loaded machine's slack
    assert len(errors) == 5 and "no complete answer within the lookup's 2 s" in errors[0]
    assert all("had passed" in e or "no complete answer" in e for e in errors)
    assert {r.source for r in rows} == {"ids"}  # every experiment still has its rows, by id
    assert wait_for_no_readers()
