"""BigQuery jobs that can be found again: labels, ids from the run and step, orphans settled first.

A Dagster pool slot guards a step, not the BigQuery job the step started. A worker killed while
it waits on a MERGE (SIGKILL, the OOM killer, a lost pod) leaves the job running, and the slot is
freed 10-30 s later: the next MERGE into that table would run beside the orphan. Every job
carries labels naming its table, export type, day and run; before a MERGE into canonical or a
units write, the step lists this account's running and pending jobs, cancels those labelled with
the same table and waits until BigQuery reports them DONE (jobs.cancel: "the job may still
complete" — only DONE is final; docs/bigquery.md). A step interrupted in Python cancels its own.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LABEL = "optimizely_assets"  # every job of the project: "true"
TABLE_LABEL = "optimizely_table"
SETTLE_TIMEOUT_SECONDS = 600.0


def label_value(value: str) -> str:
    """A label value BigQuery accepts: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


@dataclass(frozen=True)
class StepRef:
    """The Dagster run and step a warehouse call is made for (unset: a CLI or a test)."""

    run_id: str
    step_key: str
    attempt: int = 0

    def job_id(self, name: str) -> str:
        """The id of the step's ``name`` job: derived from the run and step, unique per attempt.

        BigQuery refuses a second job with an id it has seen, so a retry of the step in the same
        run (attempt + 1) never collides with the job its killed attempt left behind."""
        raw = f"optimizely_{self.step_key}_{name}_{self.run_id}_{self.attempt}"
        return re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:1024]


def labels(table: str | None = None, day: dt.date | None = None, step: StepRef | None = None, **more) -> dict:
    out = {LABEL: "true"}
    if table:
        out[TABLE_LABEL] = label_value(table)
    if day:
        out["optimizely_day"] = day.strftime("%Y%m%d")
    if step:
        out["optimizely_run"] = label_value(step.run_id)
        out["optimizely_step"] = label_value(step.step_key)
    out.update({k: label_value(str(v)) for k, v in more.items()})
    return out


def running_jobs_on(client, table: str, exclude: str | None = None) -> list:
    """This account's running and pending jobs labelled with ``table`` (jobs.list, full projection)."""
    wanted = label_value(table)
    found = []
    for state in ("running", "pending"):
        for job in client.list_jobs(state_filter=state):
            if (job.labels or {}).get(TABLE_LABEL) == wanted and job.job_id != exclude:
                found.append(job)
    return found


def settle_orphans(
    client, table: str, timeout: float = SETTLE_TIMEOUT_SECONDS, poll: float = 1.0
) -> list[str]:
    """Cancel the running jobs on ``table`` and wait until each is DONE; returns their ids.

    Raises TimeoutError naming the jobs still running after ``timeout``: the step must not start
    its own job beside them."""
    orphans = running_jobs_on(client, table)
    for job in orphans:
        client.cancel_job(job.job_id, location=job.location)
    deadline = time.monotonic() + timeout
    waiting = list(orphans)
    while waiting:
        waiting = [j for j in waiting if client.get_job(j.job_id, location=j.location).state != "DONE"]
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"BigQuery jobs on {table} still running {timeout:.0f} s after their cancellation: "
                + ", ".join(j.job_id for j in waiting)
                + "; wait for them to finish (bq show -j ID), then re-run the day"
            )
        time.sleep(poll)
    return [j.job_id for j in orphans]


@contextmanager
def cancelled_if_interrupted(client, job) -> Iterator[None]:
    """Cancel ``job`` if the wait on it is interrupted (run terminated, KeyboardInterrupt, timeout)."""
    try:
        yield
    except BaseException:
        if job.state != "DONE":
            try:
                client.cancel_job(job.job_id, location=job.location)
            except Exception:  # noqa: BLE001 - the interruption is what the user must see
                pass
        raise


def dml_counts(job, held: int, after: Callable[[], int]) -> tuple[int, int, int]:
    """(inserted, updated, deleted) rows of the canonical MERGE, from its DML statistics.

    Without them (the emulator): every row the day held is updated or deleted, so affected rows =
    inserted + held, and after = held - deleted + inserted (the pool keeps other MERGEs out)."""
    dml = getattr(job, "dml_stats", None)
    if dml is not None:
        return (
            int(dml.inserted_row_count or 0),
            int(dml.updated_row_count or 0),
            int(dml.deleted_row_count or 0),
        )
    inserted = int(job.num_dml_affected_rows or 0) - held
    deleted = held + inserted - after()
    return inserted, held - deleted, deleted
