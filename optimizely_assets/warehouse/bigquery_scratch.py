"""BigQuery jobs through a scratch table: days of more than 10,000 files, and preflight's smoke load."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from optimizely_assets.e3.layout import ExportType, compact_date
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse import bigquery_sql as sql
from optimizely_assets.warehouse.base import JobStats, table_names


class BigQueryWarehouse(Protocol):
    """What these jobs use of ``bigquery.BigQueryWarehouse`` (which imports this module)."""

    client: Any

    def table_id(self, name: str) -> str: ...
    def ref(self, name: str) -> str: ...
    def raw_partition(self, export_type: ExportType, day: dt.date) -> str: ...
    def raw_day_filter(self, day: dt.date) -> str: ...
    def load_uris(
        self, uris: list[str], destination: str, disposition: str = ...
    ) -> tuple[int, JobStats]: ...
    def run_query(self, query: str, **config) -> tuple[list[tuple], JobStats]: ...


URIS_PER_LOAD_JOB = 10_000  # documented limit of source URIs per load job


def load_many(
    wh: BigQueryWarehouse, export_type: ExportType, day: dt.date, uris: list[str]
) -> tuple[int, JobStats]:
    """More files than one load job takes: explicit URIs (no wildcard: the files' schemas may
    differ) into a scratch table, then one query job replaces the day from it atomically."""
    from google.cloud import bigquery

    raw = wh.client.get_table(wh.table_id(table_names(export_type).raw))
    scratch_id = wh.table_id(f"_scratch_{export_type.value}_raw_{compact_date(day)}")
    scratch = bigquery.Table(scratch_id, schema=raw.schema)
    scratch.expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)  # no litter after a crash
    wh.client.delete_table(scratch_id, not_found_ok=True)
    wh.client.create_table(scratch)
    stats = JobStats()
    try:
        for i in range(0, len(uris), URIS_PER_LOAD_JOB):
            _, s = wh.load_uris(uris[i : i + URIS_PER_LOAD_JOB], scratch_id, "WRITE_APPEND")
            stats += s
        _, s = wh.run_query(
            sql.copy_scratch(f"`{scratch_id}`"),
            destination=wh.raw_partition(export_type, day),
            write_disposition="WRITE_TRUNCATE",
            schema_update_options=["ALLOW_FIELD_ADDITION"],
        )
        stats += s
    finally:
        wh.client.delete_table(scratch_id, not_found_ok=True)
    (count,), _ = wh.run_query(
        f"SELECT COUNT(*) FROM {wh.ref(table_names(export_type).raw)} WHERE {wh.raw_day_filter(day)}"
    )
    return int(count[0]), stats


def smoke_load(
    wh: BigQueryWarehouse, export_type: ExportType, day: dt.date, file: StagedFile
) -> tuple[int, dict[str, str]]:
    from google.cloud import bigquery

    raw = wh.client.get_table(wh.table_id(table_names(export_type).raw))
    scratch_id = wh.table_id(f"_preflight_{export_type.value}_raw")
    scratch = bigquery.Table(scratch_id, schema=raw.schema)
    scratch.time_partitioning = raw.time_partitioning
    scratch.expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    wh.client.delete_table(scratch_id, not_found_ok=True)
    wh.client.create_table(scratch)
    try:
        rows, _ = wh.load_uris([file.uri], f"{scratch_id}${compact_date(day)}")
        loaded = wh.client.get_table(scratch_id)
        types = {f.name: f.field_type for f in loaded.schema if f.name in ("timestamp", "process_timestamp")}
    finally:
        wh.client.delete_table(scratch_id, not_found_ok=True)
    return rows, types


def dry_run_more(wh, export_type: ExportType, day: dt.date, analysis_statements: list[tuple[str, str]]):
    """(name, bytes) of the day's statements besides its MERGE and checks: the ALTER that adds raw's
    new columns to canonical, the load_history statements, the scratch copy of a day over 10,000 files
    (against an empty scratch table made for it, then dropped) and the analysis run's statements."""
    from google.cloud import bigquery

    from optimizely_assets.warehouse import history
    from optimizely_assets.warehouse.base import table_names

    names = table_names(export_type)
    canonical = wh.client.get_table(wh.table_id(names.canonical))
    now = dt.datetime.now(dt.timezone.utc)
    row = history.LoadHistoryRow("preflight", "manual", export_type.value, day, 1, 1, 1, now, ended_at=now)
    statements = [
        ("add_columns", sql.add_columns(wh.ref(names.canonical), canonical.schema[-1:])),
        ("load_history_create", history.create_table(wh.ref(history.TABLE), bigquery=True)),
    ]
    wh.run_query(statements[-1][1])  # the INSERT's dry run needs the table
    statements.append(("load_history_insert", history.insert(wh.ref(history.TABLE), row, bigquery=True)))
    scratch_id = wh.table_id(f"_preflight_{export_type.value}_scratch")
    wh.client.create_table(
        bigquery.Table(scratch_id, schema=wh.client.get_table(wh.table_id(names.raw)).schema), exists_ok=True
    )
    try:
        statements.append(("scratch_copy", sql.copy_scratch(f"`{scratch_id}`")))
        statements += analysis_statements
        out = []
        for name, text in statements:
            config = wh.query_config(dry_run=True, use_query_cache=False)
            out.append((name, int(wh.client.query(text, job_config=config).total_bytes_processed or 0)))
        return out
    finally:
        wh.client.delete_table(scratch_id, not_found_ok=True)
