"""SQL of the experiment analysis (units, attributed events, results), for DuckDB and BigQuery.

Definitions follow Optimizely's "computing experiment metrics" lab (README, "Experiment results"):
- a unit is the first decision of an (experiment_id, visitor_id) pair, by ``timestamp`` then
  ``uuid``; once written it never changes;
- an experiment event is a conversion of the unit's visitor with
  ``exposure <= timestamp <= exposure + window``; one event may count for several experiments;
- results count, per experiment, variation and event name, the units (holdback excluded), the
  units with at least one attributed event, the events and their revenue (cents).

The statements are the same on both backends but for DDL and the partition replacement; the
caller passes ``names`` (logical table -> quoted name) and ``bigquery``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

UNITS, EVENTS, RESULTS, EXPERIMENTS = (
    "experiment_units",
    "experiment_events",
    "experiment_results",
    "experiments",
)
ANALYSIS_TABLES = (UNITS, EVENTS, RESULTS, EXPERIMENTS)

# (column, DuckDB type, BigQuery type)
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    UNITS: [
        ("experiment_id", "VARCHAR", "STRING"),
        ("visitor_id", "VARCHAR", "STRING"),
        ("variation_id", "VARCHAR", "STRING"),
        ("is_holdback", "BOOLEAN", "BOOL"),
        ("exposure_timestamp", "TIMESTAMPTZ", "TIMESTAMP"),
        ("exposure_date", "DATE", "DATE"),
        ("decision_uuid", "VARCHAR", "STRING"),
        ("export_date", "DATE", "DATE"),
    ],
    EVENTS: [
        ("experiment_id", "VARCHAR", "STRING"),
        ("variation_id", "VARCHAR", "STRING"),
        ("visitor_id", "VARCHAR", "STRING"),
        ("event_uuid", "VARCHAR", "STRING"),
        ("event_name", "VARCHAR", "STRING"),
        ("event_timestamp", "TIMESTAMPTZ", "TIMESTAMP"),
        ("revenue", "BIGINT", "INT64"),
        ("exposure_timestamp", "TIMESTAMPTZ", "TIMESTAMP"),
        ("export_date", "DATE", "DATE"),
    ],
    EXPERIMENTS: [
        ("experiment_id", "VARCHAR", "STRING"),
        ("experiment_name", "VARCHAR", "STRING"),
        ("variation_id", "VARCHAR", "STRING"),
        ("variation_name", "VARCHAR", "STRING"),
        ("weight", "DOUBLE", "FLOAT64"),
        ("source", "VARCHAR", "STRING"),
    ],
}
# BigQuery layout: units by exposure day, events by export day; both clustered for the joins.
_BQ_LAYOUT = {
    UNITS: "PARTITION BY exposure_date CLUSTER BY experiment_id, visitor_id",
    EVENTS: "PARTITION BY export_date CLUSTER BY experiment_id, variation_id",
    EXPERIMENTS: "",
}


def lit(day: dt.date) -> str:
    return f"DATE '{dt.date.fromisoformat(str(day)).isoformat()}'"


@dataclass(frozen=True)
class Window:
    """Attribution window, and how far back a late event's units may be searched."""

    hours: int = 48
    late_days: int = 3

    @property
    def days(self) -> int:
        """Exposure days before an event's day that can still attribute it (ceil(hours / 24))."""
        return -(-self.hours // 24)

    def unit_days(self, day: dt.date) -> tuple[dt.date, dt.date]:
        """Exposure dates searched for the events of export day ``day`` (late events included)."""
        return day - dt.timedelta(days=self.days + self.late_days), day


def create_tables(names: dict[str, str], bigquery: bool) -> list[str]:
    out = []
    for table, cols in COLUMNS.items():
        body = ", ".join(f"{c} {bq if bigquery else duck}" for c, duck, bq in cols)
        layout = f" {_BQ_LAYOUT[table]}" if bigquery else ""
        out.append(f"CREATE TABLE IF NOT EXISTS {names[table]} ({body}){layout}")
    return out


def insert_units(names: dict[str, str], day: dt.date) -> str:
    """New pairs of the export day's decisions; pairs already in units keep their unit."""
    cols = ", ".join(c for c, *_ in COLUMNS[UNITS])
    return f"""
INSERT INTO {names[UNITS]} ({cols})
SELECT f.experiment_id, f.visitor_id, f.variation_id, f.is_holdback, f.ts, CAST(f.ts AS DATE), f.uuid, f.export_date
FROM (
  SELECT d.experiment_id, d.visitor_id, d.variation_id, d.is_holdback, d.timestamp AS ts, d.uuid, d.export_date
  FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)}
    AND d.experiment_id IS NOT NULL AND d.visitor_id IS NOT NULL AND d.timestamp IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY d.experiment_id, d.visitor_id ORDER BY d.timestamp, d.uuid) = 1
) AS f
WHERE NOT EXISTS (
  SELECT 1 FROM {names[UNITS]} AS u WHERE u.experiment_id = f.experiment_id AND u.visitor_id = f.visitor_id
)"""


def _attributed(names: dict[str, str], day: dt.date, window: Window) -> str:
    lo, hi = window.unit_days(day)
    return f"""
SELECT u.experiment_id, u.variation_id, e.visitor_id, e.uuid AS event_uuid, e.event_name,
       e.timestamp AS event_timestamp, e.revenue, u.exposure_timestamp, e.export_date
FROM {names["events"]} AS e
JOIN {names[UNITS]} AS u ON u.visitor_id = e.visitor_id
WHERE e.export_date = {lit(day)}
  AND u.exposure_date BETWEEN {lit(lo)} AND {lit(hi)}
  AND NOT COALESCE(u.is_holdback, FALSE)
  AND e.timestamp >= u.exposure_timestamp
  AND e.timestamp <= u.exposure_timestamp + INTERVAL {int(window.hours)} HOUR"""


def replace_events(names: dict[str, str], day: dt.date, window: Window, bigquery: bool) -> list[str]:
    """Statements that replace the export day's attributed events, atomically on both backends."""
    cols = ", ".join(c for c, *_ in COLUMNS[EVENTS])
    if bigquery:  # one statement: a MERGE that never matches inserts the new rows, deletes the old
        return [
            f"MERGE {names[EVENTS]} AS T USING ({_attributed(names, day, window)}) AS S ON FALSE "
            f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({', '.join('S.' + c for c in cols.split(', '))}) "
            f"WHEN NOT MATCHED BY SOURCE AND T.export_date = {lit(day)} THEN DELETE"
        ]
    return [
        f"DELETE FROM {names[EVENTS]} WHERE export_date = {lit(day)}",
        f"INSERT INTO {names[EVENTS]} ({cols}) {_attributed(names, day, window)}",
    ]


def rebuild_results(names: dict[str, str]) -> str:
    """Every variation gets a row per event name its experiment saw, zero when it had none."""
    return f"""
CREATE OR REPLACE TABLE {names[RESULTS]} AS
WITH units AS (
  SELECT experiment_id, variation_id, COUNT(*) AS units FROM {names[UNITS]}
  WHERE NOT COALESCE(is_holdback, FALSE) GROUP BY experiment_id, variation_id
),
event_names AS (SELECT DISTINCT experiment_id, event_name FROM {names[EVENTS]}),
attributed AS (
  SELECT experiment_id, variation_id, event_name, COUNT(DISTINCT visitor_id) AS converting_units,
         COUNT(*) AS events, COALESCE(SUM(revenue), 0) AS revenue
  FROM {names[EVENTS]} GROUP BY experiment_id, variation_id, event_name
)
SELECT u.experiment_id, u.variation_id, n.event_name, u.units,
       COALESCE(a.converting_units, 0) AS converting_units, COALESCE(a.events, 0) AS events,
       COALESCE(a.revenue, 0) AS revenue, COALESCE(a.converting_units, 0) / u.units AS conversion_rate
FROM units AS u
LEFT JOIN event_names AS n ON n.experiment_id = u.experiment_id
LEFT JOIN attributed AS a ON a.experiment_id = u.experiment_id AND a.variation_id = u.variation_id
  AND a.event_name IS NOT DISTINCT FROM n.event_name"""


def units_not_in_decisions(names: dict[str, str], day: dt.date) -> str:
    """Units written by the day whose decision (uuid, experiment, variation) the day's decisions lack."""
    return f"""
SELECT u.experiment_id, COUNT(*) FROM {names[UNITS]} AS u
WHERE u.export_date = {lit(day)} AND NOT EXISTS (
  SELECT 1 FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)} AND d.uuid = u.decision_uuid
    AND d.experiment_id = u.experiment_id AND d.variation_id IS NOT DISTINCT FROM u.variation_id
)
GROUP BY u.experiment_id"""


def visitors_vs_units(names: dict[str, str], day: dt.date) -> str:
    """Per experiment of the day: distinct visitors of its decisions, and the unit rows they have
    in units over all variations. Equal when every visitor has exactly one unit."""
    return f"""
SELECT p.experiment_id, COUNT(DISTINCT p.visitor_id) AS visitors, COUNT(u.visitor_id) AS units
FROM (
  SELECT DISTINCT d.experiment_id, d.visitor_id FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)} AND d.experiment_id IS NOT NULL AND d.visitor_id IS NOT NULL
    AND d.timestamp IS NOT NULL
) AS p
LEFT JOIN {names[UNITS]} AS u ON u.experiment_id = p.experiment_id AND u.visitor_id = p.visitor_id
GROUP BY p.experiment_id"""


def results_rows(names: dict[str, str], experiment_id: str | None = None) -> str:
    where = (
        "" if experiment_id is None else f" WHERE r.experiment_id = '{experiment_id.replace(chr(39), '')}'"
    )
    return f"""
SELECT r.experiment_id, COALESCE(MAX(x.experiment_name), r.experiment_id), r.variation_id,
       COALESCE(MAX(x.variation_name), r.variation_id), r.event_name, r.units, r.converting_units,
       r.events, r.revenue, MAX(x.weight)
FROM {names[RESULTS]} AS r
LEFT JOIN {names[EXPERIMENTS]} AS x ON x.experiment_id = r.experiment_id AND x.variation_id = r.variation_id
{where}
GROUP BY r.experiment_id, r.variation_id, r.event_name, r.units, r.converting_units, r.events, r.revenue
ORDER BY r.experiment_id, r.variation_id, r.event_name"""


def string_literal(value: object, bigquery: bool) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(float(value))
    text = str(value)
    if bigquery:  # GoogleSQL escapes with a backslash
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def replace_experiments(names: dict[str, str], rows: list[dict], bigquery: bool) -> list[str]:
    """Replace the whole (small) experiments dimension with ``rows``."""
    cols = [c for c, *_ in COLUMNS[EXPERIMENTS]]
    types = {c: (bq if bigquery else duck) for c, duck, bq in COLUMNS[EXPERIMENTS]}
    selects = [
        "SELECT " + ", ".join(f"CAST({string_literal(r[c], bigquery)} AS {types[c]}) AS {c}" for c in cols)
        for r in rows
    ] or ["SELECT " + ", ".join(f"CAST(NULL AS {types[c]}) AS {c}" for c in cols) + " LIMIT 0"]
    source = " UNION ALL ".join(selects)
    if bigquery:
        return [
            f"MERGE {names[EXPERIMENTS]} AS T USING ({source}) AS S ON FALSE "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('S.' + c for c in cols)}) "
            "WHEN NOT MATCHED BY SOURCE THEN DELETE"
        ]
    return [
        f"DELETE FROM {names[EXPERIMENTS]}",
        f"INSERT INTO {names[EXPERIMENTS]} ({', '.join(cols)}) {source}",
    ]
