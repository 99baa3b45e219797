"""SQL text for the warehouse, kept pure so it can be read and tested apart from any client.

Tables per export type (``t`` = decisions | events):
- ``{t}_raw``: the source columns plus ``date`` (export date, from the path) and
  ``experiment``/``event`` (the path value as written, percent-encoded). One partition per
  export date, replaced whole by each load.
- ``{t}``: canonical, unique by ``uuid``; source columns plus ``export_date``, the decoded
  ``experiment``/``event`` and ``event_date`` = DATE(COALESCE(timestamp, process_timestamp)),
  its partition column. A day's MERGE only looks at target partitions inside the event-date
  range of that day's rows (widened by a lookback), so its cost does not grow with history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from optimizely_assets.layout import ExportType
from optimizely_assets.schemas import SCHEMAS, duckdb_type, source_columns

CLUSTERING = {
    ExportType.DECISIONS: ["experiment_id", "visitor_id"],
    ExportType.EVENTS: ["event_name", "visitor_id"],
}


@dataclass(frozen=True)
class TableNames:
    raw: str
    canonical: str


def table_names(export_type: ExportType, qualifier: str = "") -> TableNames:
    q = f"{qualifier}." if qualifier else ""
    return TableNames(raw=f"{q}{export_type.value}_raw", canonical=f"{q}{export_type.value}")


def _iso(day: dt.date | str) -> str:
    return dt.date.fromisoformat(str(day)).isoformat()


def _quote_list(names: list[str], alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return ", ".join(f'{p}"{n}"' for n in names)


# --- DuckDB ---------------------------------------------------------------------------


def duckdb_create_tables(export_type: ExportType) -> list[str]:
    t = table_names(export_type)
    key = export_type.partition_column
    cols = ",\n  ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in SCHEMAS[export_type])
    return [
        f'CREATE TABLE IF NOT EXISTS {t.raw} (\n  {cols},\n  "date" DATE,\n  "{key}" VARCHAR\n)',
        f"CREATE TABLE IF NOT EXISTS {t.canonical} (\n  {cols},\n"
        f'  export_date DATE,\n  "{key}" VARCHAR,\n  event_date DATE\n)',
    ]


def duckdb_replace_raw_day(export_type: ExportType, day: dt.date | str, file_count: int) -> list[str]:
    """Statements for one transaction: drop the day, insert it again from the staged files.

    ``read_parquet`` takes the file list as parameter ``$files``; ``union_by_name`` lets files
    that lack a nullable column load with NULLs, and only known columns are selected.
    """
    t = table_names(export_type)
    key = export_type.partition_column
    cols = source_columns(export_type)
    d = _iso(day)
    stmts = [f"DELETE FROM {t.raw} WHERE \"date\" = DATE '{d}'"]
    if file_count:
        stmts.append(
            f'INSERT INTO {t.raw} ({_quote_list(cols)}, "date", "{key}")\n'
            f"SELECT {_quote_list(cols)}, DATE '{d}',\n"
            f"  regexp_extract(filename, '/{key}=([^/]+)/', 1)\n"
            f"FROM read_parquet($files, filename = true, union_by_name = true)"
        )
    return stmts


def duckdb_day_stats(export_type: ExportType, day: dt.date | str, lookback_days: int) -> str:
    """Rows, null uuids and the event-date window of a raw day, in one scan."""
    t = table_names(export_type)
    n = int(lookback_days)
    return (
        f"SELECT count(*), count(*) - count(uuid),\n"
        f'       min(CAST(coalesce("timestamp", process_timestamp) AS DATE)) - {n},\n'
        f'       max(CAST(coalesce("timestamp", process_timestamp) AS DATE)) + {n}\n'
        f"FROM {t.raw} WHERE \"date\" = DATE '{_iso(day)}'"
    )


def duckdb_day_winners(export_type: ExportType, day: dt.date | str) -> str:
    """One raw rowid per uuid of the day: the first by (process_timestamp, timestamp, key).

    A hash aggregate over narrow columns; a window over the wide rows would sort them all.
    """
    t = table_names(export_type)
    key = export_type.partition_column
    return f"""
CREATE OR REPLACE TEMP TABLE _winners AS
SELECT arg_min(rowid, struct_pack(p := process_timestamp, t := "timestamp", k := "{key}")) AS rid
FROM {t.raw}
WHERE "date" = DATE '{_iso(day)}' AND uuid IS NOT NULL AND coalesce("timestamp", process_timestamp) IS NOT NULL
GROUP BY uuid
"""


def duckdb_merge_canonical(export_type: ExportType, day: dt.date | str, lo: dt.date, hi: dt.date) -> str:
    """Insert the day's winners (see ``duckdb_day_winners``) whose uuid canonical lacks in [lo, hi]."""
    t = table_names(export_type)
    key = export_type.partition_column
    cols = source_columns(export_type)
    all_cols = [*cols, "export_date", key, "event_date"]
    return f"""
MERGE INTO {t.canonical} AS T
USING (
  SELECT {_quote_list(cols, "r")},
         r."date" AS export_date,
         url_decode(r."{key}") AS "{key}",
         CAST(coalesce(r."timestamp", r.process_timestamp) AS DATE) AS event_date
  FROM {t.raw} AS r
  WHERE r."date" = DATE '{_iso(day)}' AND r.rowid IN (SELECT rid FROM _winners)
) AS S
ON T.uuid = S.uuid AND T.event_date BETWEEN DATE '{lo.isoformat()}' AND DATE '{hi.isoformat()}'
WHEN NOT MATCHED THEN INSERT ({_quote_list(all_cols)}) VALUES ({_quote_list(all_cols, "S")})
"""


# --- BigQuery -------------------------------------------------------------------------


def bigquery_merge_canonical(
    export_type: ExportType, project: str, dataset: str, day: dt.date | str, lookback_days: int
) -> str:
    """A script doing the same as the DuckDB MERGE; the day and lookback are inlined literals.

    The window is computed into variables first: BigQuery prunes target partitions on
    constant filters, and script variables count as constants.
    """
    d = f"DATE '{_iso(day)}'"
    lookback = int(lookback_days)
    t = table_names(export_type, f"`{project}.{dataset}")
    raw = t.raw + "`"
    canonical = t.canonical + "`"
    key = export_type.partition_column
    cols = source_columns(export_type)
    all_cols = [*cols, "export_date", key, "event_date"]
    bq_cols = ", ".join(f"`{c}`" for c in all_cols)
    src_cols = ", ".join(f"r.`{c}`" for c in cols)
    return f"""
CREATE TEMP FUNCTION url_decode(s STRING) RETURNS STRING LANGUAGE js AS
  "if (s === null) return null; try {{ return decodeURIComponent(s); }} catch (e) {{ return s; }}";
DECLARE lo DATE DEFAULT (
  SELECT DATE_SUB(MIN(DATE(COALESCE(`timestamp`, process_timestamp))), INTERVAL {lookback} DAY)
  FROM {raw} WHERE `date` = {d}
);
DECLARE hi DATE DEFAULT (
  SELECT DATE_ADD(MAX(DATE(COALESCE(`timestamp`, process_timestamp))), INTERVAL {lookback} DAY)
  FROM {raw} WHERE `date` = {d}
);
MERGE {canonical} AS T
USING (
  SELECT * EXCEPT (_rn) FROM (
    SELECT {src_cols},
           r.`date` AS export_date,
           url_decode(r.`{key}`) AS `{key}`,
           DATE(COALESCE(r.`timestamp`, r.process_timestamp)) AS event_date,
           ROW_NUMBER() OVER (
             PARTITION BY r.uuid ORDER BY r.process_timestamp, r.`timestamp`, r.`{key}`
           ) AS _rn
    FROM {raw} AS r
    WHERE r.`date` = {d}
      AND r.uuid IS NOT NULL
      AND COALESCE(r.`timestamp`, r.process_timestamp) IS NOT NULL
  ) WHERE _rn = 1
) AS S
ON T.uuid = S.uuid AND T.event_date BETWEEN lo AND hi
WHEN NOT MATCHED THEN INSERT ({bq_cols}) VALUES ({", ".join(f"S.`{c}`" for c in all_cols)});
"""
