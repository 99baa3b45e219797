"""The BigQuery connection of the warehouse: its settings, client, names and jobs.

``bigquery.py`` builds the tables and runs the day's SQL on top of it; ``bigquery_jobs.py`` holds
the pure parts (labels, ids, settling orphans).
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, PrivateAttr

from optimizely_assets.warehouse import bigquery_jobs as jobs
from optimizely_assets.warehouse.base import JobStats, Warehouse

DEFAULT_MAXIMUM_BYTES_BILLED = 1 << 40  # 1 TiB per query job


class BigQueryClient(Warehouse):
    """Settings, client and jobs; the warehouse itself is ``bigquery.BigQueryWarehouse``."""

    project: str = Field(description="GCP project that runs the jobs and holds the dataset.")
    dataset: str = "optimizely_e3"
    location: str = "US"
    api_endpoint: str | None = Field(default=None, description="Emulator endpoint; unset for BigQuery.")
    maximum_bytes_billed: int | None = Field(
        default=DEFAULT_MAXIMUM_BYTES_BILLED,
        description="Every query job fails rather than bill more than this; None turns the guard off.",
    )

    _client = PrivateAttr(default=None)
    _step: jobs.StepRef | None = PrivateAttr(default=None)
    _jobs_started: int = PrivateAttr(default=0)

    @property
    def client(self):
        if self._client is None:
            from google.cloud import bigquery

            if self.api_endpoint:
                from google.auth.credentials import AnonymousCredentials

                self._client = bigquery.Client(
                    project=self.project,
                    location=self.location,
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": self.api_endpoint},
                )
            else:
                self._client = bigquery.Client(project=self.project, location=self.location)
        return self._client

    # --- names ----------------------------------------------------------------------------

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def ref(self, name: str) -> str:
        return f"`{self.table_id(name)}`"

    # --- jobs -----------------------------------------------------------------------------

    def for_step(self, run_id: str, step_key: str, attempt: int = 0) -> BigQueryClient:
        """A copy whose jobs carry the run and step in their labels, and whose writes get ids from them."""
        bound = self.model_copy()
        bound._client = self._client
        bound._step = jobs.StepRef(run_id, step_key, attempt)
        return bound

    def query_config(self, table: str | None = None, day: dt.date | None = None, **kwargs):
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(labels=jobs.labels(table, day, self._step), **kwargs)
        if self.maximum_bytes_billed:
            config.maximum_bytes_billed = int(self.maximum_bytes_billed)
        return config

    def run_write(self, query: str, table: str, day: dt.date | None = None):
        """One DML job into ``table``: its orphans settled first (bigquery_jobs.py), an id from the
        run and step, cancelled if the wait is interrupted. Returns the finished job."""
        qualified = f"{self.dataset}.{table}"  # two datasets of one project keep their jobs apart
        jobs.settle_orphans(self.client, qualified)
        self._jobs_started += 1
        job_id = self._step.job_id(f"{table}_{self._jobs_started}") if self._step else None
        # A job with a fixed id cannot be retried under that id: the step's retry makes the next one.
        fixed = {"job_id": job_id, "job_retry": None} if job_id else {}
        job = self.client.query(query, job_config=self.query_config(qualified, day), **fixed)
        with jobs.cancelled_if_interrupted(self.client, job):
            job.result()
        return job

    def ensure_dataset(self) -> None:
        """Get the dataset, create it only if it is missing: a Data Editor on a dataset created for
        it holds no bigquery.datasets.create, which create_dataset(exists_ok=True) checks first."""
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        dataset_id = f"{self.project}.{self.dataset}"
        try:
            self.client.get_dataset(dataset_id)
        except NotFound:
            self.client.create_dataset(bigquery.Dataset(dataset_id), exists_ok=True)

    def run_query(self, query: str, **config) -> tuple[list[tuple], JobStats]:
        job = self.client.query(query, job_config=self.query_config(**config))
        rows = [tuple(r.values()) for r in job.result()]
        return rows, job_stats(job)


def job_stats(job) -> JobStats:
    return JobStats(
        jobs=1,
        bytes_processed=int(getattr(job, "total_bytes_processed", None) or 0),
        bytes_billed=int(getattr(job, "total_bytes_billed", None) or 0),
        slot_ms=int(getattr(job, "slot_millis", None) or 0),
        job_ids=(job.job_id,) if getattr(job, "job_id", None) else (),
    )
