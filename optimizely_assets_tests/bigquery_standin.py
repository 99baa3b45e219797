"""A stand-in for the BigQuery REST calls bqemulator cannot play: jobs still running when listed,
cancelled, then DONE; a dataset the account may read but not create. Bound to 127.0.0.1.

bqemulator runs every job to completion inside the insert call, and its jobs.list drops labels,
so a job left running by a killed worker cannot happen there. The shapes follow BigQuery's REST
reference (v2): jobs.list (``jobs[]`` with ``jobReference``, ``state``, ``configuration.labels``),
jobs.cancel (``bigquery#jobCancelResponse`` with ``job``), jobs.get, datasets.get/insert and the
error body ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

from optimizely_assets_tests.servers import _Loopback


@dataclass
class StandinJob:
    job_id: str
    labels: dict[str, str]
    polls_until_done: int = 2  # jobs.get answers RUNNING this many times after the cancel
    cancelled: bool = False
    gets_after_cancel: int = 0

    @property
    def state(self) -> str:
        return "DONE" if self.cancelled and self.gets_after_cancel > self.polls_until_done else "RUNNING"

    def resource(self, project: str) -> dict:
        status: dict = {"state": self.state}
        if self.state == "DONE":
            status["errorResult"] = {
                "reason": "stopped",
                "message": "Job execution was cancelled: User requested cancellation",
            }
        return {
            "kind": "bigquery#job",
            "id": f"{project}:US.{self.job_id}",
            "jobReference": {"projectId": project, "jobId": self.job_id, "location": "US"},
            "state": self.state,
            "status": status,
            "configuration": {"jobType": "QUERY", "query": {"query": "MERGE ..."}, "labels": self.labels},
            "statistics": {"creationTime": "1796601600000"},
        }


@dataclass
class BigQueryStandin(_Loopback):
    project: str = "test-project"
    datasets: set[str] = field(default_factory=set)
    jobs: dict[str, StandinJob] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> str:
        standin, lock = self, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, status: str, message: str) -> None:
                self._send(code, {"error": {"code": code, "message": message, "status": status}})

            def _route(self, method: str) -> None:
                path = urlparse(self.path).path
                with lock:
                    standin.calls.append((method, path))
                p = standin.project
                if method == "GET" and (
                    m := re.fullmatch(rf"/bigquery/v2/projects/{p}/datasets/([^/]+)", path)
                ):
                    if m[1] in standin.datasets:
                        return self._send(
                            200,
                            {
                                "kind": "bigquery#dataset",
                                "id": f"{p}:{m[1]}",
                                "datasetReference": {"projectId": p, "datasetId": m[1]},
                                "location": "US",
                            },
                        )
                    return self._error(404, "NOT_FOUND", f"Not found: Dataset {p}:{m[1]}")
                if method == "POST" and path == f"/bigquery/v2/projects/{p}/datasets":
                    return self._error(
                        403,
                        "PERMISSION_DENIED",
                        f"Access Denied: Project {p}: User does not have bigquery.datasets.create "
                        f"permission in project {p}.",
                    )
                if method == "GET" and path == f"/bigquery/v2/projects/{p}/jobs":
                    state = dict(x.split("=", 1) for x in urlparse(self.path).query.split("&") if "=" in x)
                    wanted = state.get("stateFilter", "").lower()
                    with lock:
                        jobs = [
                            j.resource(p)
                            for j in standin.jobs.values()
                            if not wanted or j.state.lower() == wanted
                        ]
                    return self._send(200, {"kind": "bigquery#jobList", "etag": "x", "jobs": jobs})
                if m := re.fullmatch(rf"/bigquery/v2/projects/{p}/jobs/([^/]+)(/cancel)?", path):
                    job = standin.jobs.get(m[1])
                    if job is None:
                        return self._error(404, "NOT_FOUND", f"Not found: Job {p}:US.{m[1]}")
                    with lock:
                        if method == "POST" and m[2]:
                            job.cancelled = True
                            return self._send(
                                200, {"kind": "bigquery#jobCancelResponse", "job": job.resource(p)}
                            )
                        if job.cancelled:
                            job.gets_after_cancel += 1
                        return self._send(200, job.resource(p))
                return self._error(400, "INVALID_ARGUMENT", f"the stand-in does not answer {method} {path}")

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return f"http://127.0.0.1:{self._serve(Handler)}"

    def client(self, url: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            location="US",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": url},
        )
