"""SQL of deletion on request, both dialects: the privacy tables, counts and deletes by visitor.

Tables:
- ``deletion_requests``: ids waiting to be forgotten, fed by the CLI or a team's own system; a
  request claims its rows (``request_id``) and deletes them when it finishes, so no clear id stays;
- ``forgotten_visitors``: the salted hashes of every forgotten visitor (suppression of later loads);
- ``deletion_log``: one row per visitor and request: hash, rows per table, files, outcome, error.
The visitor tables are the raw and canonical tables of both export types and the two analysis
tables keyed by visitor; the results are aggregates, rebuilt afterwards.
"""

from __future__ import annotations

import datetime as dt

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.analysis_sql import EVENTS, UNITS, string_literal
from optimizely_assets.warehouse.base import table_names

REQUESTS, FORGOTTEN, LOG = "deletion_requests", "forgotten_visitors", "deletion_log"
PRIVACY_TABLES = (REQUESTS, FORGOTTEN, LOG)
COLUMNS = {  # name, DuckDB type, BigQuery type
    REQUESTS: [
        ("visitor_id", "VARCHAR", "STRING"),
        ("requested_at", "TIMESTAMPTZ", "TIMESTAMP"),
        ("request_id", "VARCHAR", "STRING"),
    ],
    FORGOTTEN: [
        ("visitor_hash", "VARCHAR", "STRING"),
        ("forgotten_at", "TIMESTAMPTZ", "TIMESTAMP"),
        ("request_id", "VARCHAR", "STRING"),
    ],
    LOG: [
        ("request_id", "VARCHAR", "STRING"),
        ("requested_at", "TIMESTAMPTZ", "TIMESTAMP"),
        ("finished_at", "TIMESTAMPTZ", "TIMESTAMP"),
        ("visitor_hash", "VARCHAR", "STRING"),
        ("rows_removed", "VARCHAR", "STRING"),  # JSON: table -> rows of this request
        ("files_rewritten", "BIGINT", "INT64"),
        ("rows_left", "BIGINT", "INT64"),  # counted before the clear ids were dropped: 0 when done
        ("outcome", "VARCHAR", "STRING"),  # ok | failed
        ("error", "VARCHAR", "STRING"),
    ],
}


def visitor_tables(export_type: ExportType | None = None) -> list[str]:
    """The tables holding a visitor's rows, by their unqualified names: raw, canonical (per type),
    and with ``None`` the analysis tables."""
    if export_type is None:
        return [UNITS, EVENTS]
    names = table_names(export_type)
    return [names.raw, names.canonical]


def create_tables(names: dict[str, str], bigquery: bool) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {names[t]} ("
        + ", ".join(f"{c} {bq if bigquery else duck}" for c, duck, bq in COLUMNS[t])
        + ")"
        for t in PRIVACY_TABLES
    ]


def _in(ids: list[str], bigquery: bool) -> str:
    return "visitor_id IN (" + ", ".join(string_literal(v, bigquery) for v in ids) + ")"


def count_rows(table: str, ids: list[str], bigquery: bool) -> str:
    return f"SELECT COUNT(*) FROM {table} WHERE {_in(ids, bigquery)}"


def delete_rows(table: str, ids: list[str], bigquery: bool) -> str:
    return f"DELETE FROM {table} WHERE {_in(ids, bigquery)}"


def raw_days(raw_table: str, ids: list[str], bigquery: bool, day_column: str) -> str:
    """The export days whose raw partition holds these visitors: their staged files are there."""
    return f"SELECT DISTINCT {day_column} FROM {raw_table} WHERE {_in(ids, bigquery)} ORDER BY 1"


def claim_requests(names: dict[str, str], request_id: str, bigquery: bool) -> str:
    """Give every unclaimed request row this request's id (a failed request keeps its claim)."""
    return (
        f"UPDATE {names[REQUESTS]} SET request_id = {string_literal(request_id, bigquery)} "
        "WHERE request_id IS NULL"
    )


def requested_ids(names: dict[str, str], request_id: str, bigquery: bool) -> str:
    return (
        f"SELECT DISTINCT visitor_id FROM {names[REQUESTS]} "
        f"WHERE request_id = {string_literal(request_id, bigquery)} ORDER BY 1"
    )


def open_requests(names: dict[str, str]) -> str:
    """Claimed but unfinished requests (a failure, to re-run), oldest first, then new ones."""
    return f"SELECT DISTINCT request_id FROM {names[REQUESTS]} WHERE request_id IS NOT NULL ORDER BY 1"


def insert_rows(table: str, columns: list[str], rows: list[tuple], bigquery: bool) -> str:
    values = ", ".join("(" + ", ".join(_value(v, bigquery) for v in row) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"


def _value(value: object, bigquery: bool) -> str:
    """A literal by the value's type: a datetime is a TIMESTAMP, any string a string (an id may
    read like SQL)."""
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.astimezone(dt.timezone.utc).isoformat()}'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return string_literal(value, bigquery)


def new_hashes(
    names: dict[str, str], hashes: list[str], request_id: str, now: dt.datetime, bigquery: bool
) -> str:
    """Add the hashes not yet suppressed (a re-run adds nothing)."""
    rows = " UNION ALL ".join(
        f"SELECT {string_literal(h, bigquery)} AS visitor_hash, {_value(now, bigquery)} AS forgotten_at, "
        f"{string_literal(request_id, bigquery)} AS request_id"
        for h in hashes
    )
    return (
        f"INSERT INTO {names[FORGOTTEN]} (visitor_hash, forgotten_at, request_id) "
        f"SELECT * FROM ({rows}) AS n WHERE n.visitor_hash NOT IN (SELECT visitor_hash FROM {names[FORGOTTEN]})"
    )
