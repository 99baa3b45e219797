"""The DuckDB warehouse's preflight: every statement bound without running, one file loaded and
rolled back. On the caller's connection; nothing is committed."""

from __future__ import annotations

import datetime as dt

import duckdb

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import duckdb_sql as sql
from optimizely_assets.warehouse.base import table_names


def dry_run(
    con: duckdb.DuckDBPyConnection, export_type: ExportType, day: dt.date, window: tuple[dt.date, dt.date]
) -> list[tuple[str, int | None]]:
    queries = sql.dry_run_queries(export_type, day, window)
    con.execute("BEGIN TRANSACTION")
    try:
        # The later statements read the day's temp tables: made empty, then rolled back.
        con.execute(queries["day_uuids"] + " LIMIT 0")
        con.execute(queries["checked_uuids"] + " LIMIT 0")
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
