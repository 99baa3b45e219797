"""`load_history`: one row per export type, day and run, so "what was loaded when, and did it
match" is a SQL question, with or without Dagster.

A success row is written with the load's last write: inside the MERGE's transaction on DuckDB,
by a single INSERT job right after the MERGE job on BigQuery (BigQuery has no transaction across
jobs here: a crash between the two leaves a load without its row, never a row without its load).
A failed day gets an ``outcome = 'failed'`` row after its transaction rolled back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from optimizely_assets.warehouse.analysis_sql import string_literal

TABLE = "load_history"
# (column, DuckDB type, BigQuery type)
COLUMNS = [
    ("run_id", "VARCHAR", "STRING"),
    ("run_trigger", "VARCHAR", "STRING"),
    ("export_type", "VARCHAR", "STRING"),
    ("export_date", "DATE", "DATE"),
    ("source_files", "BIGINT", "INT64"),
    ("source_bytes", "BIGINT", "INT64"),
    ("footer_rows", "BIGINT", "INT64"),
    ("rows_loaded", "BIGINT", "INT64"),
    ("uuids_inserted", "BIGINT", "INT64"),
    ("duplicates_skipped", "BIGINT", "INT64"),
    ("job_ids", "VARCHAR", "STRING"),
    ("bytes_billed", "BIGINT", "INT64"),
    ("started_at", "TIMESTAMPTZ", "TIMESTAMP"),
    ("ended_at", "TIMESTAMPTZ", "TIMESTAMP"),
    ("outcome", "VARCHAR", "STRING"),
    ("error", "VARCHAR", "STRING"),
]


def trigger_of(tags: Mapping[str, str]) -> str:
    """How the run started, from the tags Dagster puts on it."""
    if "dagster/backfill" in tags:
        return "backfill"
    if "dagster/sensor_name" in tags:
        return "sensor"
    if "dagster/schedule_name" in tags:
        return "schedule"
    return "manual"


@dataclass(frozen=True)
class LoadHistoryRow:
    run_id: str
    run_trigger: str
    export_type: str
    export_date: dt.date
    source_files: int | None
    source_bytes: int | None
    footer_rows: int | None
    started_at: dt.datetime
    rows_loaded: int | None = None
    uuids_inserted: int | None = None
    duplicates_skipped: int | None = None
    job_ids: str = ""
    bytes_billed: int | None = None
    ended_at: dt.datetime | None = None
    outcome: str = "success"
    error: str | None = None

    def succeeded(self, stats) -> LoadHistoryRow:
        """The row for a MERGE that returned ``stats`` (a ``MergeStats``), ending now."""
        return dataclasses.replace(
            self,
            rows_loaded=stats.day_rows,
            uuids_inserted=stats.inserted,
            duplicates_skipped=stats.day_rows - stats.null_uuid_rows - stats.inserted,
            job_ids=" ".join(stats.jobs.job_ids),
            bytes_billed=stats.jobs.bytes_billed if stats.jobs.jobs else None,
            ended_at=dt.datetime.now(dt.timezone.utc),
        )

    def failed(self, error: BaseException) -> LoadHistoryRow:
        # On one line, as raised: errors name files and days, never secrets (see settings/auth).
        text = " | ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())[:2000]
        return dataclasses.replace(
            self,
            ended_at=dt.datetime.now(dt.timezone.utc),
            outcome="failed",
            error=f"{type(error).__name__}: {text}",
        )


def _value(value: object, bigquery: bool) -> str:
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.astimezone(dt.timezone.utc).isoformat()}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return string_literal(value, bigquery)
    return str(int(value))  # counts


def create_table(name: str, bigquery: bool) -> str:
    body = ", ".join(f"{c} {bq if bigquery else duck}" for c, duck, bq in COLUMNS)
    layout = " PARTITION BY export_date" if bigquery else ""
    return f"CREATE TABLE IF NOT EXISTS {name} ({body}){layout}"


def insert(name: str, row: LoadHistoryRow, bigquery: bool) -> str:
    values = ", ".join(_value(getattr(row, c), bigquery) for c, *_ in COLUMNS)
    return f"INSERT INTO {name} ({', '.join(c for c, *_ in COLUMNS)}) VALUES ({values})"
