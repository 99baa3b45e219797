"""SQL of the experiment results, the experiments dimension and the unit checks (both backends).

Results count, per experiment, variation and event name, the units (holdback excluded; units seen
in several variations too when the option says so), the units with at least one attributed event,
the events and their revenue (cents). Every variation the experiments dimension names takes part,
with 0 units where it has none, and a NULL variation is a variation like any other.
"""

from __future__ import annotations

import datetime as dt

from optimizely_assets.warehouse.analysis_sql import (
    COLUMNS,
    EVENTS,
    EXPERIMENTS,
    RESULTS,
    UNITS,
    Window,
    in_bound,
    lit,
    string_literal,
)


def _kept_units(names: dict[str, str], exclude_multiple: bool) -> str:
    multiple = " AND NOT COALESCE(multiple_variations, FALSE)" if exclude_multiple else ""
    return (
        f"SELECT experiment_id, visitor_id, variation_id FROM {names[UNITS]} "
        f"WHERE NOT COALESCE(is_holdback, FALSE){multiple}"
    )


def rebuild_results(names: dict[str, str], exclude_multiple: bool = False) -> str:
    """Every variation gets a row per event name its experiment saw, zero when it had none."""
    return f"""
CREATE OR REPLACE TABLE {names[RESULTS]} AS
WITH kept AS ({_kept_units(names, exclude_multiple)}),
arms AS (
  SELECT DISTINCT experiment_id, variation_id FROM kept
  UNION ALL
  SELECT DISTINCT x.experiment_id, x.variation_id FROM {names[EXPERIMENTS]} AS x
  WHERE x.experiment_id IN (SELECT experiment_id FROM kept) AND NOT EXISTS (
    SELECT 1 FROM kept AS k WHERE k.experiment_id = x.experiment_id AND k.variation_id = x.variation_id)
),
unit_counts AS (
  SELECT a.experiment_id, a.variation_id, COUNT(k.visitor_id) AS units FROM arms AS a
  LEFT JOIN kept AS k ON k.experiment_id = a.experiment_id AND k.variation_id IS NOT DISTINCT FROM a.variation_id
  GROUP BY a.experiment_id, a.variation_id
),
attributed AS (
  SELECT e.experiment_id, e.variation_id, e.event_name, COUNT(DISTINCT e.visitor_id) AS converting_units,
         COUNT(*) AS events, COALESCE(SUM(e.revenue), 0) AS revenue
  FROM {names[EVENTS]} AS e JOIN kept AS k ON k.experiment_id = e.experiment_id AND k.visitor_id = e.visitor_id
  GROUP BY e.experiment_id, e.variation_id, e.event_name
),
event_names AS (SELECT DISTINCT experiment_id, event_name FROM attributed)
SELECT u.experiment_id, u.variation_id, n.event_name, u.units,
       COALESCE(a.converting_units, 0) AS converting_units, COALESCE(a.events, 0) AS events,
       COALESCE(a.revenue, 0) AS revenue,
       CASE WHEN u.units > 0 THEN COALESCE(a.converting_units, 0) / u.units ELSE 0 END AS conversion_rate
FROM unit_counts AS u
LEFT JOIN event_names AS n ON n.experiment_id = u.experiment_id
LEFT JOIN attributed AS a ON a.experiment_id = u.experiment_id
  AND a.variation_id IS NOT DISTINCT FROM u.variation_id AND a.event_name IS NOT DISTINCT FROM n.event_name"""


def multiple_variation_units(names: dict[str, str]) -> str:
    """Per experiment: non-holdback units, and those whose decisions showed several variations."""
    return f"""
SELECT experiment_id, COUNT(*), COUNTIF(COALESCE(multiple_variations, FALSE)) FROM {names[UNITS]}
WHERE NOT COALESCE(is_holdback, FALSE) GROUP BY experiment_id ORDER BY experiment_id"""


def units_not_in_decisions(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Units whose first decision was exported on the day, but which match no decision of the day
    (uuid, experiment, variation). Such units have exposure days within the day's bound only."""
    lo, hi = window.timestamp_days(day)
    return f"""
SELECT u.experiment_id, COUNT(*) FROM {names[UNITS]} AS u
WHERE u.export_date = {lit(day)} AND u.exposure_date BETWEEN {lit(lo)} AND {lit(hi)} AND NOT EXISTS (
  SELECT 1 FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)} AND d.uuid = u.decision_uuid
    AND d.experiment_id = u.experiment_id AND d.variation_id IS NOT DISTINCT FROM u.variation_id
)
GROUP BY u.experiment_id"""


def visitors_vs_units(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Per experiment of the day: distinct visitors of its in-bound decisions, the unit rows they
    have, and how many of those units come after one of the day's decisions (a unit must be the
    pair's first decision). Equal counts and no later unit when every visitor has its one unit."""
    return f"""
SELECT p.experiment_id, COUNT(DISTINCT p.visitor_id) AS visitors, COUNT(u.visitor_id) AS units,
       COUNTIF(u.exposure_timestamp > p.first_ts
               OR (u.exposure_timestamp = p.first_ts AND u.decision_uuid > p.first_uuid)) AS later
FROM (
  SELECT experiment_id, visitor_id, timestamp AS first_ts, uuid AS first_uuid FROM (
    SELECT d.experiment_id, d.visitor_id, d.timestamp, d.uuid,
           ROW_NUMBER() OVER (PARTITION BY d.experiment_id, d.visitor_id ORDER BY d.timestamp, d.uuid) AS rn
    FROM {names["decisions"]} AS d
    WHERE d.export_date = {lit(day)} AND d.experiment_id IS NOT NULL AND d.visitor_id IS NOT NULL
      AND {in_bound("d", day, window)}
  ) AS f WHERE rn = 1
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


def allocations(names: dict[str, str]) -> str:
    """Traffic weights the experiments dimension knows (any scale; 0 = not allocated)."""
    return (
        f"SELECT experiment_id, variation_id, weight FROM {names[EXPERIMENTS]} "
        "WHERE weight IS NOT NULL AND variation_id IS NOT NULL"
    )


def replace_experiments(
    names: dict[str, str], rows: list[dict], bigquery: bool, table: str = EXPERIMENTS
) -> list[str]:
    """Replace a whole small table (the experiments dimension, the metrics) with ``rows``."""
    cols = [c for c, *_ in COLUMNS[table]]
    types = {c: (bq if bigquery else duck) for c, duck, bq in COLUMNS[table]}
    selects = [
        "SELECT " + ", ".join(f"CAST({string_literal(r[c], bigquery)} AS {types[c]}) AS {c}" for c in cols)
        for r in rows
    ] or ["SELECT " + ", ".join(f"CAST(NULL AS {types[c]}) AS {c}" for c in cols) + " LIMIT 0"]
    source = " UNION ALL ".join(selects)
    if bigquery:
        return [
            f"MERGE {names[table]} AS T USING ({source}) AS S ON FALSE "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('S.' + c for c in cols)}) "
            "WHEN NOT MATCHED BY SOURCE THEN DELETE"
        ]
    return [
        f"DELETE FROM {names[table]}",
        f"INSERT INTO {names[table]} ({', '.join(cols)}) {source}",
    ]
