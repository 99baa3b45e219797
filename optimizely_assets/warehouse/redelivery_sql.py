"""SQL for a day Optimizely re-delivered: units whose decision canonical's day no longer holds.

Units fold decisions in by a running minimum, which cannot take a decision back; these statements
find the pairs a re-delivered day took a unit from, drop their events and derive them again.
"""

from __future__ import annotations

import datetime as dt

from optimizely_assets.warehouse.analysis_sql import CLOCK_AHEAD_DAYS, COLUMNS, EVENTS, UNITS, Window, lit


def retracted_units(names: dict[str, str], day: dt.date) -> str:
    """Pairs whose unit is a decision of export day ``day`` that canonical's day no longer holds as it
    was: Optimizely re-delivered the day without it, or with another variation or timestamp."""
    return f"""
SELECT u.experiment_id, u.visitor_id FROM {names[UNITS]} AS u
WHERE u.export_date = {lit(day)} AND NOT EXISTS (
  SELECT 1 FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)} AND d.uuid = u.decision_uuid AND d.experiment_id = u.experiment_id
    AND d.visitor_id = u.visitor_id AND d.timestamp = u.exposure_timestamp
    AND COALESCE(d.variation_id, '') = COALESCE(u.variation_id, ''))"""


def delete_retracted_events(names: dict[str, str], day: dt.date) -> str:
    return f"""
DELETE FROM {names[EVENTS]} AS e WHERE EXISTS (
  SELECT 1 FROM ({retracted_units(names, day)}) AS r
  WHERE r.experiment_id = e.experiment_id AND r.visitor_id = e.visitor_id
)"""


def rederive_units(names: dict[str, str], day: dt.date, window: Window) -> str:
    """The retracted pairs' units again, from every canonical decision of theirs within its own
    export day's bound; a pair with none left goes. Rare (a re-delivered day), so it reads all days."""
    lo, hi = -window.lateness_days, CLOCK_AHEAD_DAYS
    cols = [c for c, *_ in COLUMNS[UNITS] if c not in ("experiment_id", "visitor_id")]
    pair = "PARTITION BY d.experiment_id, d.visitor_id"
    best = f"""
SELECT d.experiment_id, d.visitor_id, d.variation_id, d.is_holdback, d.timestamp AS exposure_timestamp,
       CAST(d.timestamp AS DATE) AS exposure_date, d.uuid AS decision_uuid, d.export_date,
       MIN(COALESCE(d.variation_id, '')) OVER ({pair}) <> MAX(COALESCE(d.variation_id, '')) OVER ({pair})
         OR (COUNT(*) OVER ({pair}) > COUNT(d.variation_id) OVER ({pair}) AND COUNT(d.variation_id) OVER ({pair}) > 0)
         AS multiple_variations,
       ROW_NUMBER() OVER ({pair} ORDER BY d.timestamp, d.uuid) AS rn
FROM {names["decisions"]} AS d
JOIN ({retracted_units(names, day)}) AS r ON r.experiment_id = d.experiment_id AND r.visitor_id = d.visitor_id
WHERE d.timestamp IS NOT NULL
  AND CAST(d.timestamp AS DATE) BETWEEN DATE_ADD(d.export_date, INTERVAL ({lo}) DAY)
                                    AND DATE_ADD(d.export_date, INTERVAL ({hi}) DAY)"""
    return f"""
MERGE INTO {names[UNITS]} AS T USING (
  SELECT r.experiment_id, r.visitor_id, {", ".join("b." + c for c in cols)}
  FROM ({retracted_units(names, day)}) AS r
  LEFT JOIN ({best}) AS b ON b.experiment_id = r.experiment_id AND b.visitor_id = r.visitor_id AND b.rn = 1
) AS S
ON T.experiment_id = S.experiment_id AND T.visitor_id = S.visitor_id
WHEN MATCHED AND S.decision_uuid IS NULL THEN DELETE
WHEN MATCHED THEN UPDATE SET {", ".join(f"{c} = S.{c}" for c in cols)}"""
