"""The privacy tables of a warehouse, on either backend (statements in warehouse/forget_sql.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from dagster import ConfigurableResource
from pydantic import Field

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.privacy.visitors import LOCAL_SALT_FILE, deployment_salt
from optimizely_assets.warehouse import forget_sql as sql
from optimizely_assets.warehouse.analysis import ExperimentAnalysis
from optimizely_assets.warehouse.base import Warehouse


class PrivacySettings(ConfigurableResource):
    """Where the salt of forgotten visitors' hashes comes from; never a config value itself."""

    salt_env_var: str = Field(
        default="OPTIMIZELY_FORGET_SALT", description="Environment variable with the salt."
    )
    local_dir: str | None = Field(
        default=None,
        description="Embedded default: a random salt kept in this directory when the variable is unset.",
    )

    def salt(self) -> str:
        from pathlib import Path

        return deployment_salt(self.salt_env_var, Path(self.local_dir) if self.local_dir else None)

    def none_forgotten(self) -> bool:
        """True where no hash could match: the embedded default before its first forget (no salt
        variable, no local salt yet). The staging step then skips the table (one attach a step)."""
        import os
        from pathlib import Path

        unset = not os.environ.get(self.salt_env_var, "").strip()
        return unset and self.local_dir is not None and not (Path(self.local_dir) / LOCAL_SALT_FILE).exists()


class PrivacyTables:
    def __init__(self, warehouse: Warehouse):
        self.analysis = ExperimentAnalysis(warehouse)
        self.bigquery = self.analysis.bigquery
        self.raw_day_column = warehouse.raw_day_column
        ref = warehouse.ref
        self.names = {t: ref(t) for t in sql.PRIVACY_TABLES}
        self.visitor_tables = {t: ref(t) for e in (*ExportType, None) for t in sql.visitor_tables(e)}

    def ensure(self) -> None:
        self.analysis.ensure_tables()
        for export_type in ExportType:
            self.analysis.warehouse.ensure_tables(export_type)
        for text in sql.create_tables(self.names, self.bigquery):
            self.analysis.execute([text])

    def query(self, text: str) -> list[tuple]:
        return self.analysis.query(text)

    def execute(self, statements: list[str | tuple[str, str]]) -> int:
        return self.analysis.execute(statements)

    def forgotten_hashes(self) -> set[str]:
        """Every suppressed visitor's hash (empty when nothing was ever forgotten: no table yet).
        One read per staging step; no DDL, which would cost BigQuery jobs on every day."""
        if self.bigquery:
            from google.api_core.exceptions import NotFound as missing
        else:
            from duckdb import CatalogException as missing
        try:
            rows = self.query(f"SELECT visitor_hash FROM {self.names[sql.FORGOTTEN]}")
        except missing:
            return set()
        return {str(h) for (h,) in rows}

    def add_requests(self, ids: list[str], now: dt.datetime) -> int:
        """Queue ids in ``deletion_requests`` (the CLI's way in; teams may insert rows themselves)."""
        rows = [(v, now, None) for v in ids]
        self.execute(
            [
                (
                    sql.REQUESTS,
                    sql.insert_rows(
                        self.names[sql.REQUESTS],
                        ["visitor_id", "requested_at", "request_id"],
                        rows,
                        self.bigquery,
                    ),
                )
            ]
        )
        return len(rows)

    def claim(self) -> str | None:
        """The request to work on: an unfinished one (re-run), else the pending rows under a new id."""
        open_ids = [str(r) for (r,) in self.query(sql.open_requests(self.names))]
        if open_ids:
            return open_ids[0]
        request_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
        self.execute([(sql.REQUESTS, sql.claim_requests(self.names, request_id, self.bigquery))])
        return request_id if self.query(sql.requested_ids(self.names, request_id, self.bigquery)) else None

    def ids_of(self, request_id: str) -> list[str]:
        return [str(v) for (v,) in self.query(sql.requested_ids(self.names, request_id, self.bigquery))]

    def dry_run_bytes(self, text: str) -> int:
        """BigQuery's estimate of the bytes a statement would bill (a dry run)."""
        wh = self.analysis.warehouse
        job = wh.client.query(text, job_config=wh.query_config(dry_run=True, use_query_cache=False))  # type: ignore[attr-defined]
        return int(job.total_bytes_processed or 0)
