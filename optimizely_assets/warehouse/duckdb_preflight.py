"""The DuckDB warehouse's preflight: every statement bound without running, one file loaded and
rolled back. On the caller's connection; nothing is committed."""

from __future__ import annotations

import datetime as dt

import duckdb

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS
from optimizely_assets.warehouse import duckdb_checks as checks
from optimizely_assets.warehouse import duckdb_sql as sql
from optimizely_assets.warehouse.base import table_names


def dry_run_queries(export_type: ExportType, day: dt.date, window: tuple[dt.date, dt.date]) -> dict[str, str]:
    """Every statement a day runs, by name, for ``EXPLAIN`` (the temp tables' first)."""
    t = table_names(export_type)
    return {
        "day_uuids": sql.day_uuids(export_type, day),
        "day_stats": sql.day_stats(export_type, day),
        "day_before_merge": sql.day_before_merge(export_type, day),
        "delete_canonical_day": sql.delete_canonical_day(export_type, day),
        "merge_hits": sql.merge_hits(export_type, window),
        "merge_canonical": sql.merge_canonical(export_type, day, [f.name for f in SCHEMAS[export_type]]),
        "raw_key_counts": sql.key_counts(t.raw, export_type.key_column, day),
        "merged_day_findings": checks.merged_day_findings(export_type, day, window),
        "checked_uuids": checks.checked_uuids(export_type, day),
        "canonical_findings": checks.canonical_findings(export_type, day, window),
        "stale_uuids": checks.stale_uuids(export_type, day),
    }


def dry_run(
    con: duckdb.DuckDBPyConnection, export_type: ExportType, day: dt.date, window: tuple[dt.date, dt.date]
) -> list[tuple[str, int | None]]:
    queries = dry_run_queries(export_type, day, window)
    con.execute("BEGIN TRANSACTION")
    try:
        # The later statements read the day's temp tables: made empty, then rolled back.
        for temp in ("day_uuids", "merge_hits", "checked_uuids"):
            con.execute(queries[temp] + " LIMIT 0")
        for text in queries.values():
            con.execute("EXPLAIN " + text)  # binds every name and type; nothing runs
    finally:
        con.execute("ROLLBACK")
    return [(name, None) for name in queries]


def smoke_load(
    con: duckdb.DuckDBPyConnection, export_type: ExportType, day: dt.date, uri: str
) -> tuple[int, dict[str, str]]:
    """Rows of one staged file and the types its timestamps load as, in a rolled-back transaction."""
    raw = table_names(export_type).raw
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TEMP TABLE _preflight AS SELECT * FROM {raw} LIMIT 0")
        con.execute(sql.insert_raw_files(export_type, day, [uri], "_preflight"))
        (rows,) = con.execute("SELECT count(*) FROM _preflight").fetchone()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = '_preflight' AND column_name IN ('timestamp', 'process_timestamp')"
            ).fetchall()
        )
    finally:
        con.execute("ROLLBACK")
    return int(rows), types
