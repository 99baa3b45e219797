"""The sufficient statistics of experiment metrics, in one aggregate query (both backends).

Per experiment, variation and event name the experiment saw, three per-unit metrics within the
attribution window (the attributed events in ``experiment_events``):
- ``conversion``: 1 if the unit has such an event, else 0;
- ``count``: how many;
- ``revenue``: the sum of their ``revenue`` (cents; NULL counts as 0).
For each: n (every kept unit of the variation, converted or not), Σy and Σy², and for CUPED the
same metric over the ``PRE_EXPOSURE_DAYS`` before the unit's exposure (from canonical events): Σx,
Σx² and Σxy. Units kept as in the results: holdback out, units in several variations out when the
option says so. No row leaves the warehouse: inference is arithmetic on these sums (inference.py).
"""

from __future__ import annotations

from optimizely_assets.warehouse.analysis_sql import EVENTS, UNITS, string_literal

PRE_EXPOSURE_DAYS = 7
METRICS = ("conversion", "count", "revenue")


def _pre_start(bigquery: bool) -> str:
    if bigquery:
        return f"TIMESTAMP_SUB(k.exposure_timestamp, INTERVAL {PRE_EXPOSURE_DAYS} DAY)"
    return f"k.exposure_timestamp - INTERVAL {PRE_EXPOSURE_DAYS} DAY"


def metric_sums(
    names: dict[str, str],
    bigquery: bool,
    exclude_multiple: bool = False,
    experiment_id: str | None = None,
    by_day: bool = False,
) -> str:
    """(experiment_id, variation_id, event_name, metric, units, sum, sum_squares, pre_sum,
    pre_sum_squares, sum_products) rows, one per experiment x variation x event name x metric;
    ``by_day`` adds the units' exposure day as a last column (the report's cumulative lift), and
    ``experiment_id`` keeps one experiment."""
    real = "FLOAT64" if bigquery else "DOUBLE"
    multiple = " AND NOT COALESCE(multiple_variations, FALSE)" if exclude_multiple else ""
    if experiment_id is not None:
        multiple += f" AND experiment_id = {string_literal(experiment_id, bigquery)}"
    day = ", exposure_date" if by_day else ""
    values = {
        "conversion": ("CASE WHEN {p}_n > 0 THEN 1 ELSE 0 END",),
        "count": ("COALESCE({p}_n, 0)",),
        "revenue": ("COALESCE({p}_revenue, 0)",),
    }
    per_metric = []
    for metric in METRICS:
        (expr,) = values[metric]
        y, x = expr.format(p="post"), expr.format(p="pre")
        per_metric.append(
            f"SELECT experiment_id, variation_id, event_name, '{metric}' AS metric{day},\n"
            f"  CAST({y} AS {real}) AS y, CAST({x} AS {real}) AS x FROM per_unit"
        )
    return f"""
WITH kept AS (
  SELECT experiment_id, visitor_id, variation_id, exposure_timestamp, exposure_date FROM {names[UNITS]}
  WHERE NOT COALESCE(is_holdback, FALSE){multiple}
),
event_names AS (SELECT DISTINCT experiment_id, event_name FROM {names[EVENTS]} WHERE event_name IS NOT NULL),
post AS (
  SELECT experiment_id, visitor_id, event_name, COUNT(*) AS n, SUM(COALESCE(revenue, 0)) AS revenue
  FROM {names[EVENTS]} GROUP BY experiment_id, visitor_id, event_name
),
pre AS (
  SELECT k.experiment_id, k.visitor_id, c.event_name, COUNT(*) AS n, SUM(COALESCE(c.revenue, 0)) AS revenue
  FROM kept AS k JOIN {names["events"]} AS c ON c.visitor_id = k.visitor_id
  WHERE c.timestamp >= {_pre_start(bigquery)} AND c.timestamp < k.exposure_timestamp
  GROUP BY k.experiment_id, k.visitor_id, c.event_name
),
per_unit AS (
  SELECT k.experiment_id, k.variation_id, k.exposure_date, e.event_name, post.n AS post_n, post.revenue AS post_revenue,
         pre.n AS pre_n, pre.revenue AS pre_revenue
  FROM kept AS k
  JOIN event_names AS e ON e.experiment_id = k.experiment_id
  LEFT JOIN post ON post.experiment_id = k.experiment_id AND post.visitor_id = k.visitor_id
    AND post.event_name = e.event_name
  LEFT JOIN pre ON pre.experiment_id = k.experiment_id AND pre.visitor_id = k.visitor_id
    AND pre.event_name = e.event_name
),
unit_metrics AS (
{" UNION ALL ".join(per_metric)}
)
SELECT experiment_id, variation_id, event_name, metric, COUNT(*) AS units,
       SUM(y) AS sum, SUM(y * y) AS sum_squares, SUM(x) AS pre_sum, SUM(x * x) AS pre_sum_squares,
       SUM(x * y) AS sum_products{day}
FROM unit_metrics
GROUP BY experiment_id, variation_id, event_name, metric{day}
ORDER BY experiment_id, variation_id, event_name, metric{day}"""
