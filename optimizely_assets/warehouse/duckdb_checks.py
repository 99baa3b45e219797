"""The canonical checks on DuckDB: their SQL, and how a step runs it.

Two paths to the same findings. Alone (a check re-run from the UI, a CI check), the window is probed
for the day's uuids. Right after the day's MERGE on the same connection, which holds the file's
write lock, the window's other days are what the MERGE's probe read (``window_hits``): only the
day's own rows are read again, and the window is probed only if those rows show anything wrong.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.base import (
    EXPORT_DATE,
    CanonicalFindings,
    DaySummary,
    keyed_counts,
    table_names,
)
from optimizely_assets.warehouse.duckdb_sql import DAY_UUIDS, WINDOW_HITS, in_window, key_counts, lit, q
from optimizely_assets.warehouse.uuid_key import UUID_KEY, duckdb_expr

CHECKED_UUIDS = "temp.main.checked_uuids"  # see checked_uuids


def checked_uuids(export_type: ExportType, day: dt.date, after_merge: bool = False) -> str:
    """The uuids the canonical checks are about (the day's, in raw or canonical) with their keys and
    whether raw's day has them, as a temp table: its exact row count makes the window probe build on
    them, as in ``day_uuids``.

    ``after_merge``: on the connection whose MERGE just built ``day_uuids`` (raw's day, keyed, read
    under the same file lock), those rows are taken as they are, and only canonical's uuids raw's
    day lacks (none, unless canonical is wrong) get a key computed here.
    """
    t = table_names(export_type)
    d = lit(day)
    if after_merge:
        return (
            f"CREATE OR REPLACE TEMP TABLE checked_uuids AS\n"
            f"SELECT uuid, {UUID_KEY}, true AS in_raw FROM {DAY_UUIDS}\n"
            f"UNION ALL SELECT c.uuid, {duckdb_expr('c.uuid')}, false FROM (\n"
            f"  SELECT DISTINCT uuid FROM {t.canonical} WHERE {EXPORT_DATE} = {d}) AS c\n"
            f"ANTI JOIN {DAY_UUIDS} AS r ON r.uuid = c.uuid"
        )
    return (
        f"CREATE OR REPLACE TEMP TABLE checked_uuids AS\n"
        f"SELECT uuid, {duckdb_expr('uuid')} AS {UUID_KEY}, bool_or(in_raw) AS in_raw FROM (\n"
        f"SELECT uuid, true AS in_raw FROM {t.raw} WHERE {EXPORT_DATE} = {d} AND uuid IS NOT NULL\n"
        f"UNION ALL SELECT uuid, false FROM {t.canonical} WHERE {EXPORT_DATE} = {d}) GROUP BY uuid"
    )


def stale_uuids(export_type: ExportType, day: dt.date) -> str:
    """``not_in_raw`` after ``checked_uuids``, which already knows which of canonical's uuids raw's
    day lacks: usually none, and then nothing is joined."""
    c = table_names(export_type).canonical
    return (
        f"SELECT count(*), list(c.uuid ORDER BY c.uuid)[1:20] FROM {c} AS c\n"
        f"SEMI JOIN (SELECT uuid FROM {CHECKED_UUIDS} WHERE NOT in_raw) AS s ON s.uuid = c.uuid\n"
        f"WHERE c.{EXPORT_DATE} = {lit(day)}"
    )


def _window_unkeyed(export_type: ExportType, window: tuple[dt.date, dt.date]) -> str:
    # Apart from the probe: a row group's statistics say it has no NULL, so most are skipped, and
    # the probe stays a semi join (an OR with IS NULL made it a mark join over every window row).
    c = table_names(export_type).canonical
    return f"SELECT count(*) FROM {c} WHERE {in_window(window)} AND {UUID_KEY} IS NULL"


def canonical_findings(export_type: ExportType, day: dt.date, window: tuple[dt.date, dt.date]) -> str:
    """One statement for the canonical checks, as (kind, value, n): rows per key of the raw day
    (``raw``), uuids canonical lacks per key (``missing``), duplicated uuids (``duplicate``), and
    rows whose key cannot be trusted (``unkeyed``: none in the window, or not the day's uuid's).

    Runs after ``checked_uuids``. The window is read once, keys only, for those uuids and rows
    without a key; uuid text comes from the day's own rows (a key has exactly one uuid). The
    day's stored keys are compared with the ones ``checked_uuids`` computed (one row per uuid),
    through one join on uuid: no key computed twice.
    """
    t = table_names(export_type)
    k, d = q(export_type.key_column), lit(day)
    return f"""
WITH day_raw AS (SELECT uuid, {k} AS k FROM {t.raw} WHERE {EXPORT_DATE} = {d}),
hits AS MATERIALIZED (
  SELECT {UUID_KEY} FROM {t.canonical} WHERE {in_window(window)}
  AND {UUID_KEY} IN (SELECT {UUID_KEY} FROM {CHECKED_UUIDS})
),
found AS (SELECT uuid FROM {CHECKED_UUIDS} WHERE {UUID_KEY} IN (SELECT {UUID_KEY} FROM hits)),
dups AS (
  SELECT ch.uuid, h.n FROM (
    SELECT {UUID_KEY}, count(*) AS n FROM hits
    WHERE {UUID_KEY} IN (SELECT {UUID_KEY} FROM {t.canonical} WHERE {EXPORT_DATE} = {d})
    GROUP BY 1 HAVING count(*) > 1
  ) AS h JOIN {CHECKED_UUIDS} AS ch ON ch.{UUID_KEY} = h.{UUID_KEY} ORDER BY ch.uuid LIMIT 20
)
SELECT 'raw' AS kind, k, count(*) FROM day_raw GROUP BY k
UNION ALL
SELECT 'missing', r.k, count(DISTINCT r.uuid) FROM day_raw AS r ANTI JOIN found AS f ON f.uuid = r.uuid
WHERE r.uuid IS NOT NULL GROUP BY r.k
UNION ALL
SELECT 'duplicate', uuid, n FROM dups
UNION ALL
SELECT 'unkeyed', NULL, ({_window_unkeyed(export_type, window)}) + (
  SELECT count(*) FROM {t.canonical} AS c LEFT JOIN {CHECKED_UUIDS} AS ch ON ch.uuid = c.uuid
  WHERE c.{EXPORT_DATE} = {d} AND (ch.uuid IS NULL OR ch.{UUID_KEY} IS DISTINCT FROM c.{UUID_KEY}))
"""


def merged_day_findings(export_type: ExportType, day: dt.date, window: tuple[dt.date, dt.date]) -> str:
    """The checks right after the day's MERGE on its connection: one row of counts.

    The window's other days hold, of the day's uuids, exactly the MERGE's ``window_hits``; canonical's
    day is read twice, joined to ``day_uuids`` on uuid and grouped by key (each a plain join or
    aggregate, which DuckDB spills: no materialised CTE, which it holds in memory). A clean day
    has no ``stale`` row (a uuid raw's day lacks), no wrong or missing key, no key twice, and as
    many keys as ``day_uuids`` has uuids: every key counted is then one of ``day_uuids``'s, so
    each of them was found. Anything else and the caller runs the full checks, which name it.
    """
    t = table_names(export_type)
    d = lit(day)
    return f"""
SELECT s.stale, s.wrong + ({_window_unkeyed(export_type, window)}), k.keys, k.dup_keys,
       (SELECT count(*) FROM {DAY_UUIDS})
FROM (
  SELECT count(*) FILTER (WHERE u.uuid IS NULL) AS stale,
         count(*) FILTER (WHERE u.uuid IS NOT NULL AND u.{UUID_KEY} IS DISTINCT FROM c.{UUID_KEY}) AS wrong
  FROM {t.canonical} AS c LEFT JOIN {DAY_UUIDS} AS u ON u.uuid = c.uuid WHERE c.{EXPORT_DATE} = {d}
) AS s, (
  SELECT count(*) AS keys, count(*) FILTER (WHERE n > 1 AND in_day) AS dup_keys FROM (
    SELECT {UUID_KEY}, count(*) AS n, bool_or(in_day) AS in_day FROM (
      SELECT {UUID_KEY}, true AS in_day FROM {t.canonical} WHERE {EXPORT_DATE} = {d}
      UNION ALL SELECT {UUID_KEY}, false FROM {WINDOW_HITS}
    ) GROUP BY {UUID_KEY}
  )
) AS k
"""


def _sum(rows, kind: str) -> int:
    return sum(int(n) for k, _, n in rows if k == kind)


def findings(
    con: duckdb.DuckDBPyConnection,
    export_type: ExportType,
    day: dt.date,
    window: tuple[dt.date, dt.date],
    merged_rows: int | None,
) -> tuple[DaySummary, CanonicalFindings]:
    """The canonical checks' findings. ``merged_rows``: canonical's row count as the day's MERGE on
    this connection committed it (None: no such MERGE); a table that no longer has that count was
    written since, and the MERGE's probe no longer describes it."""
    t = table_names(export_type)
    if (
        merged_rows is not None
        and con.execute(f"SELECT count(*) FROM {t.canonical}").fetchone()[0] == merged_rows
    ):
        stale, unkeyed, keys, dup_keys, uuids = con.execute(
            merged_day_findings(export_type, day, window)
        ).fetchone()
        if not (stale or unkeyed or dup_keys) and keys == uuids:
            raw = keyed_counts(con.execute(key_counts(t.raw, export_type.key_column, day)).fetchall())
            return DaySummary(sum(raw.values()), raw), CanonicalFindings({}, [])
    con.execute(checked_uuids(export_type, day, after_merge=merged_rows is not None))
    rows = con.execute(canonical_findings(export_type, day, window)).fetchall()
    n, examples = con.execute(stale_uuids(export_type, day)).fetchone()
    raw = keyed_counts((k, n) for kind, k, n in rows if kind == "raw")
    missing = keyed_counts((k, n) for kind, k, n in rows if kind == "missing")
    dups = sorted((str(u), int(n)) for kind, u, n in rows if kind == "duplicate")
    stale = tuple(str(u) for u in examples or ())
    return DaySummary(sum(raw.values()), raw), CanonicalFindings(
        missing, dups, int(n), stale, _sum(rows, "unkeyed")
    )
