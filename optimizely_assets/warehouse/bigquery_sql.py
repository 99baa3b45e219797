"""BigQuery SQL text: pure functions, beside ``bigquery.py`` that runs them.

Every statement is a single statement (no scripts, no variables). Dates are inlined as literals
built from ``datetime.date`` values, because BigQuery documents partition pruning on constant
filters; whether script variables or parameters prune is not promised (docs/bigquery.md).
Raw is an ingestion-time partitioned table: its day is selected with ``raw_day_filter``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.base import EVENT_DATE, EXPORT_DATE, OrderColumn, winner_order
from optimizely_assets.warehouse.uuid_key import UUID_KEY, bigquery_expr


def q(name: str) -> str:
    return f"`{name}`"


def lit(day: dt.date) -> str:
    return f"DATE '{dt.date.fromisoformat(str(day)).isoformat()}'"


def raw_day_filter(day: dt.date, column: str = "_PARTITIONDATE") -> str:
    """Rows of one export day in the ingestion-time partitioned raw table."""
    return f"{column} = {lit(day)}"


def _between(window: tuple[dt.date, dt.date]) -> str:
    return f"{EXPORT_DATE} BETWEEN {lit(window[0])} AND {lit(window[1])}"


def delete_raw_day(raw: str, raw_day: str) -> str:
    return f"DELETE FROM {raw} WHERE {raw_day}"


def day_stats(raw: str, raw_day: str, canonical: str, day: dt.date) -> str:
    """Raw rows, distinct and NULL uuids of the day, and the rows canonical's day holds before its MERGE."""
    return (
        f"SELECT COUNT(*), COUNT(DISTINCT uuid), COUNTIF(uuid IS NULL), "
        f"({canonical_day_rows(canonical, day)}) FROM {raw} WHERE {raw_day}"
    )


def _order_key(c: OrderColumn) -> str:
    if not c.is_nested:
        return f"{q(c.name)} ASC NULLS LAST"
    # The same text as DuckDB builds: fields joined by \x1f, NULL as \x01, elements by \x1e.
    parts = ", '\\x1f', ".join(f"IFNULL(CAST(e.{q(f)} AS STRING), '\\x01')" for f in c.nested_fields)
    return (
        f"ARRAY_TO_STRING(ARRAY(SELECT CONCAT({parts}) FROM UNNEST({q(c.name)}) AS e "
        f"WITH OFFSET AS o ORDER BY o), '\\x1e') ASC"
    )


def merge_canonical(
    export_type: ExportType,
    raw: str,
    canonical: str,
    raw_day: str,
    day: dt.date,
    window: tuple[dt.date, dt.date],
    columns: list[str],
) -> str:
    """One MERGE makes canonical's day the first copy of each of raw's uuids that no other day of the
    window holds: it inserts the new ones, rewrites the ones the day holds (a re-run's changed
    content) and deletes the day's rows whose uuid raw no longer has (a re-delivered day).

    The window filter sits in the ON clause, on the target's partitioning column, and the
    UPDATE and DELETE clauses carry the day's own constant filter, as the DML documentation
    describes for pruning a MERGE's target (preflight's dry run shows the bytes on a project).
    The target is matched on ``uuid_key`` (19 billed bytes a row, not the uuid's 38) and no other
    of its columns is read over the window: the key is exact, so a matched row's uuid is the
    source's and is not set again.
    """
    order = ", ".join(_order_key(c) for c in winner_order(export_type))
    target = [*columns, EXPORT_DATE, EVENT_DATE, UUID_KEY]
    unchanged = (EXPORT_DATE, "uuid", UUID_KEY)
    return f"""MERGE {canonical} AS T
USING (
  SELECT {", ".join(q(c) for c in columns)},
         {lit(day)} AS {EXPORT_DATE},
         DATE(COALESCE(`timestamp`, process_timestamp)) AS {EVENT_DATE},
         {bigquery_expr("uuid")} AS {UUID_KEY}
  FROM {raw}
  WHERE {raw_day} AND uuid IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY uuid ORDER BY {order}) = 1
) AS S
ON T.{UUID_KEY} = S.{UUID_KEY} AND T.{_between(window)}
WHEN MATCHED AND T.{EXPORT_DATE} = {lit(day)} THEN
  UPDATE SET {", ".join(f"{q(c)} = S.{q(c)}" for c in target if c not in unchanged)}
WHEN NOT MATCHED BY TARGET THEN
  INSERT ({", ".join(q(c) for c in target)})
  VALUES ({", ".join(f"S.{q(c)}" for c in target)})
WHEN NOT MATCHED BY SOURCE AND T.{EXPORT_DATE} = {lit(day)} THEN
  DELETE"""


def raw_key_counts(raw: str, key: str, raw_day: str) -> str:
    return f"SELECT {q(key)}, COUNT(*) FROM {raw} WHERE {raw_day} GROUP BY 1"


def canonical_day_rows(canonical: str, day: dt.date) -> str:
    return f"SELECT COUNT(*) FROM {canonical} WHERE {EXPORT_DATE} = {lit(day)}"


def canonical_key_counts(canonical: str, key: str, day: dt.date) -> str:
    return f"SELECT {q(key)}, COUNT(*) FROM {canonical} WHERE {EXPORT_DATE} = {lit(day)} GROUP BY 1"


def not_in_raw(raw: str, canonical: str, raw_day: str, day: dt.date) -> str:
    """Canonical's uuids of the day that raw's day lacks (count, first 20 by uuid), and the day's
    rows whose ``uuid_key`` is not their uuid's: the day's partition only."""
    return (
        f"SELECT COUNT(*), ARRAY_AGG(c.uuid ORDER BY c.uuid LIMIT 20), "
        f"(SELECT COUNTIF({UUID_KEY} IS NULL OR {UUID_KEY} != {bigquery_expr('uuid')}) FROM {canonical} "
        f"WHERE {EXPORT_DATE} = {lit(day)}) FROM {canonical} AS c "
        f"LEFT JOIN (SELECT DISTINCT uuid FROM {raw} WHERE {raw_day}) AS r ON r.uuid = c.uuid "
        f"WHERE c.{EXPORT_DATE} = {lit(day)} AND r.uuid IS NULL"
    )


def canonical_findings(raw: str, canonical: str, key: str, raw_day: str, day: dt.date, window) -> str:
    """One statement for the canonical checks, as (kind, value, n, uuid_key): raw rows per key value
    (``raw``), raw uuids canonical lacks per key value (``missing``), keys of the day found more than
    once in the window (``duplicate``: the key is decoded to its uuid in Python) and window rows
    without a key (``unkeyed``).

    Of canonical it references ``uuid_key`` and ``export_date`` only: BigQuery bills each referenced
    column over the partitions scanned, and the window is 2H + 1 of them.
    """
    return f"""WITH day_raw AS (
  SELECT uuid, {q(key)} AS k, {bigquery_expr("uuid")} AS {UUID_KEY} FROM {raw} WHERE {raw_day} AND uuid IS NOT NULL
),
hits AS (
  SELECT {UUID_KEY}, COUNT(*) AS n, LOGICAL_OR({EXPORT_DATE} = {lit(day)}) AS on_day FROM {canonical}
  WHERE {_between(window)} AND ({UUID_KEY} IS NULL OR {UUID_KEY} IN (
    SELECT {UUID_KEY} FROM day_raw UNION DISTINCT SELECT {UUID_KEY} FROM {canonical} WHERE {EXPORT_DATE} = {lit(day)}))
  GROUP BY {UUID_KEY}
)
SELECT 'raw' AS kind, {q(key)} AS value, COUNT(*) AS n, CAST(NULL AS BYTES) AS {UUID_KEY} FROM {raw} WHERE {raw_day} GROUP BY 2
UNION ALL
SELECT 'missing', r.k, COUNT(DISTINCT r.uuid), NULL FROM day_raw AS r
  LEFT JOIN hits AS h ON h.{UUID_KEY} = r.{UUID_KEY} WHERE h.{UUID_KEY} IS NULL GROUP BY 2
UNION ALL
(SELECT 'duplicate', NULL, n, {UUID_KEY} FROM hits WHERE on_day AND n > 1 ORDER BY {UUID_KEY} LIMIT 20)
UNION ALL
SELECT 'unkeyed', NULL, IFNULL(SUM(n), 0), NULL FROM hits WHERE {UUID_KEY} IS NULL"""


def fill_uuid_keys(canonical: str) -> str:
    """The migration of a canonical table from before ``uuid_key``: one statement, idempotent."""
    return f"UPDATE {canonical} SET {UUID_KEY} = {bigquery_expr('uuid')} WHERE {UUID_KEY} IS NULL"


_DDL_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def ddl_type(field) -> str:
    """GoogleSQL type of a ``SchemaField`` (nested and repeated included), for ADD COLUMN."""
    base = _DDL_TYPES.get(field.field_type, field.field_type)
    if base == "STRUCT":
        base = "STRUCT<" + ", ".join(f"{q(f.name)} {ddl_type(f)}" for f in field.fields) + ">"
    return f"ARRAY<{base}>" if field.mode == "REPEATED" else base


def add_columns(table: str, fields) -> str:
    """One DDL statement; IF NOT EXISTS makes a repeat or a concurrent twin harmless."""
    return f"ALTER TABLE {table} " + ", ".join(
        f"ADD COLUMN IF NOT EXISTS {q(f.name)} {ddl_type(f)}" for f in fields
    )


def merge_nested(have: list[dict], new: list[dict], path: str = "") -> tuple[list[dict], list[str]]:
    """``have`` (API field dicts) with the RECORD subfields ``new`` adds, at any depth, and their
    paths (``attributes[].source``). Top-level columns only ``new`` has are not added here."""
    by_name = {f["name"]: f for f in new}
    out, added = [], []
    for f in have:
        other = by_name.get(f["name"])
        if f.get("type") in ("RECORD", "STRUCT") and other and other.get("fields"):
            where = path + f["name"] + ("[]" if f.get("mode") == "REPEATED" else "")
            known = {c["name"] for c in f.get("fields", [])}
            fields, deeper = merge_nested(f.get("fields", []), other["fields"], where + ".")
            extra = [c for c in other["fields"] if c["name"] not in known]
            f = {**f, "fields": [*fields, *extra]}
            added += deeper + [f"{where}.{c['name']}" for c in extra]
        out.append(f)
    return out, added


def copy_scratch(scratch: str) -> str:
    return f"SELECT * FROM {scratch}"


@dataclass(frozen=True)
class PlannedQuery:
    name: str
    sql: str
    dml: bool = False


def day_queries(
    export_type: ExportType,
    raw: str,
    canonical: str,
    raw_day: str,
    day: dt.date,
    window: tuple[dt.date, dt.date],
    columns: list[str],
) -> list[PlannedQuery]:
    """Every query a day runs, in the order it runs them."""
    key = export_type.key_column
    return [
        PlannedQuery("delete_raw_day", delete_raw_day(raw, raw_day), dml=True),
        PlannedQuery("day_stats", day_stats(raw, raw_day, canonical, day)),
        PlannedQuery(
            "merge_canonical",
            merge_canonical(export_type, raw, canonical, raw_day, day, window, columns),
            dml=True,
        ),
        PlannedQuery("raw_key_counts", raw_key_counts(raw, key, raw_day)),
        PlannedQuery("canonical_key_counts", canonical_key_counts(canonical, key, day)),
        PlannedQuery("canonical_findings", canonical_findings(raw, canonical, key, raw_day, day, window)),
        PlannedQuery("not_in_raw", not_in_raw(raw, canonical, raw_day, day)),
    ]
