"""SQL of the experiment analysis (units, attributed events), for DuckDB and BigQuery.

Definitions (README, "Experiment results"; ``reference/experiment-statistics.md``):
- a unit is an (experiment_id, visitor_id) pair; its first decision by ``timestamp`` then ``uuid``
  among every loaded decision within the lateness bound gives its variation and exposure;
- an experiment event is a conversion of the unit's visitor with
  ``exposure <= timestamp <= exposure + window``, whichever export day delivered either row;
- a row is within the lateness bound L when ``export_date - L <= DATE(timestamp) <= export_date + 1``
  (a client clock may run up to a day ahead); other rows are counted, never attributed.

Units are a running minimum: merging export days in any order, any number of times, gives the same
table. The statements are the same on both backends but for DDL; callers pass ``names`` (logical
table -> quoted name) and ``bigquery``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

UNITS, EVENTS, RESULTS, EXPERIMENTS, METRICS = (
    "experiment_units",
    "experiment_events",
    "experiment_results",
    "experiments",
    "experiment_metrics",
)
ANALYSIS_TABLES = (UNITS, EVENTS, RESULTS, EXPERIMENTS, METRICS)
_TEXT, _REAL = ("VARCHAR", "STRING"), ("DOUBLE", "FLOAT64")
CLOCK_AHEAD_DAYS = 1  # a client timestamp may fall on the day after its export day

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
        ("multiple_variations", "BOOLEAN", "BOOL"),
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
        ("decision_uuid", "VARCHAR", "STRING"),
    ],
    EXPERIMENTS: [
        ("experiment_id", "VARCHAR", "STRING"),
        ("experiment_name", "VARCHAR", "STRING"),
        ("variation_id", "VARCHAR", "STRING"),
        ("variation_name", "VARCHAR", "STRING"),
        ("weight", "DOUBLE", "FLOAT64"),
        ("source", "VARCHAR", "STRING"),
        ("is_baseline", "BOOLEAN", "BOOL"),
    ],
}
COLUMNS[METRICS] = [
    *(
        (c, *_TEXT)
        for c in ("experiment_id", "variation_id", "baseline_variation_id", "event_name", "metric")
    ),
    ("units", "BIGINT", "INT64"),
    *(
        (c, *_REAL)
        for c in (
            "sum sum_squares mean lift ci_low ci_high p_value seq_ci_low seq_ci_high seq_p_value "
            "cuped_lift cuped_ci_low cuped_ci_high fdr_p_value"
        ).split()
    ),
    ("note", *_TEXT),
]
# Columns added after the first release; see create_tables.
_ADDED = {UNITS: ("multiple_variations",), EVENTS: ("decision_uuid",), EXPERIMENTS: ("is_baseline",)}
# BigQuery layout: units by exposure day, events by export day; both clustered for the joins.
_BQ_LAYOUT = {
    UNITS: "PARTITION BY exposure_date CLUSTER BY experiment_id, visitor_id",
    EVENTS: "PARTITION BY export_date CLUSTER BY experiment_id, variation_id",
    EXPERIMENTS: "",
    METRICS: "",
}


def lit(day: dt.date) -> str:
    return f"DATE '{dt.date.fromisoformat(str(day)).isoformat()}'"


def _days(day: dt.date, n: int) -> dt.date:
    return day + dt.timedelta(days=n)


@dataclass(frozen=True)
class Window:
    """Attribution window (hours) and lateness bound L (days between a row's timestamp and its
    export day); together they bound which days a day's analysis reads and can change."""

    hours: int = 48
    lateness_days: int = 7

    @property
    def days(self) -> int:
        """Exposure days before an event's day that can still attribute it (ceil(hours / 24))."""
        return -(-self.hours // 24)

    def timestamp_days(self, export_day: dt.date) -> tuple[dt.date, dt.date]:
        """Client dates a row exported on ``export_day`` may carry and still be analysed."""
        return _days(export_day, -self.lateness_days), _days(export_day, CLOCK_AHEAD_DAYS)

    def unit_days(self, day: dt.date) -> tuple[dt.date, dt.date]:
        """Exposure dates that can attribute the in-bound events of export day ``day``."""
        lo, hi = self.timestamp_days(day)
        return _days(lo, -self.days), hi

    def decision_days_for_events(self) -> tuple[int, int]:
        """Offsets of the decisions' export days whose units the events of day D read: a unit
        exposed on Y comes from export days Y - 1 .. Y + L."""
        return -(self.lateness_days + self.days + CLOCK_AHEAD_DAYS), self.lateness_days + CLOCK_AHEAD_DAYS


def in_bound(alias: str, day: dt.date, window: Window) -> str:
    lo, hi = window.timestamp_days(day)
    return (
        f"{alias}.timestamp IS NOT NULL AND CAST({alias}.timestamp AS DATE) BETWEEN {lit(lo)} AND {lit(hi)}"
    )


def out_of_bound(alias: str, day: dt.date, window: Window) -> str:
    lo, hi = window.timestamp_days(day)
    return f"{alias}.timestamp IS NOT NULL AND CAST({alias}.timestamp AS DATE) NOT BETWEEN {lit(lo)} AND {lit(hi)}"


def create_tables(names: dict[str, str], bigquery: bool) -> list[str]:
    out = []
    for table, cols in COLUMNS.items():
        body = ", ".join(f"{c} {bq if bigquery else duck}" for c, duck, bq in cols)
        layout = f" {_BQ_LAYOUT[table]}" if bigquery else ""
        out.append(f"CREATE TABLE IF NOT EXISTS {names[table]} ({body}){layout}")
        # Tables of an earlier release gain the columns added since (NULL until a re-run fills them).
        out += [
            f"ALTER TABLE {names[table]} ADD COLUMN IF NOT EXISTS {c} {bq if bigquery else duck}"
            for c, duck, bq in cols
            if c in _ADDED.get(table, ())
        ]
    return out


def _day_units(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Per pair, the first in-bound decision exported on ``day``, and whether the day showed the
    pair in more than one variation (NULL counts as a variation of its own)."""
    return f"""
SELECT experiment_id, visitor_id, variation_id, is_holdback, exposure_timestamp,
       CAST(exposure_timestamp AS DATE) AS exposure_date, decision_uuid, export_date, multiple_variations
FROM (
  SELECT d.experiment_id, d.visitor_id, d.variation_id, d.is_holdback, d.timestamp AS exposure_timestamp,
         d.uuid AS decision_uuid, d.export_date,
         MIN(COALESCE(d.variation_id, '')) OVER (PARTITION BY d.experiment_id, d.visitor_id)
           <> MAX(COALESCE(d.variation_id, '')) OVER (PARTITION BY d.experiment_id, d.visitor_id)
           OR (COUNT(*) OVER (PARTITION BY d.experiment_id, d.visitor_id)
               > COUNT(d.variation_id) OVER (PARTITION BY d.experiment_id, d.visitor_id)
               AND COUNT(d.variation_id) OVER (PARTITION BY d.experiment_id, d.visitor_id) > 0)
           AS multiple_variations,
         ROW_NUMBER() OVER (PARTITION BY d.experiment_id, d.visitor_id ORDER BY d.timestamp, d.uuid) AS rn
  FROM {names["decisions"]} AS d
  WHERE d.export_date = {lit(day)} AND d.experiment_id IS NOT NULL AND d.visitor_id IS NOT NULL
    AND {in_bound("d", day, window)}
) AS f
WHERE rn = 1"""


def _beats(s: str, t: str) -> str:
    return (
        f"({s}.exposure_timestamp < {t}.exposure_timestamp OR ({s}.exposure_timestamp = "
        f"{t}.exposure_timestamp AND {s}.decision_uuid < {t}.decision_uuid))"
    )


def moved_units(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Pairs whose unit the day's decisions will move to an earlier decision."""
    return f"""
SELECT s.experiment_id, s.visitor_id FROM ({_day_units(names, day, window)}) AS s
JOIN {names[UNITS]} AS t ON t.experiment_id = s.experiment_id AND t.visitor_id = s.visitor_id
WHERE {_beats("s", "t")}"""


def delete_moved_events(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Events attributed to a unit that is about to move: they may lie outside its new window, in
    export days no mapping reaches. The new window's days are re-attributed by automation."""
    return f"""
DELETE FROM {names[EVENTS]} AS e WHERE EXISTS (
  SELECT 1 FROM ({moved_units(names, day, window)}) AS m
  WHERE m.experiment_id = e.experiment_id AND m.visitor_id = e.visitor_id
)"""


def merge_units(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Fold the day's first decisions into units: keep the earlier of the two by (timestamp, uuid),
    and flag a pair seen in two variations. Commutative and idempotent: order and re-runs do not
    matter."""
    cols = [c for c, *_ in COLUMNS[UNITS]]
    # NULL is a variation of its own, as in _day_units ('' stands for it in both).
    differs = "(COALESCE(T.variation_id, '') <> COALESCE(S.variation_id, ''))"
    sets = ", ".join(
        f"{c} = S.{c}" for c in cols if c not in ("experiment_id", "visitor_id", "multiple_variations")
    )
    return f"""
MERGE INTO {names[UNITS]} AS T USING ({_day_units(names, day, window)}) AS S
ON T.experiment_id = S.experiment_id AND T.visitor_id = S.visitor_id
WHEN MATCHED AND {_beats("S", "T")} THEN UPDATE SET {sets},
  multiple_variations = (COALESCE(T.multiple_variations, FALSE) OR S.multiple_variations OR {differs})
WHEN MATCHED AND NOT COALESCE(T.multiple_variations, FALSE) AND (S.multiple_variations OR {differs})
  THEN UPDATE SET multiple_variations = TRUE
WHEN NOT MATCHED THEN INSERT ({", ".join(cols)}) VALUES ({", ".join("S." + c for c in cols)})"""


def _attributed(names: dict[str, str], day: dt.date, window: Window) -> str:
    lo, hi = window.unit_days(day)
    return f"""
SELECT u.experiment_id, u.variation_id, e.visitor_id, e.uuid AS event_uuid, e.event_name,
       e.timestamp AS event_timestamp, e.revenue, u.exposure_timestamp, e.export_date, u.decision_uuid
FROM {names["events"]} AS e
JOIN {names[UNITS]} AS u ON u.visitor_id = e.visitor_id
WHERE e.export_date = {lit(day)} AND {in_bound("e", day, window)}
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


def late_decisions(names: dict[str, str], day: dt.date, window: Window) -> str:
    """Per experiment: the day's decisions whose timestamp is outside the lateness bound."""
    return f"""
SELECT d.experiment_id, COUNT(*) FROM {names["decisions"]} AS d
WHERE d.export_date = {lit(day)} AND d.experiment_id IS NOT NULL AND {out_of_bound("d", day, window)}
GROUP BY d.experiment_id"""


def late_events_span(names: dict[str, str], day: dt.date, window: Window) -> str:
    """How many of the day's events are outside the bound, and their earliest and latest dates."""
    return f"""
SELECT COUNT(*), MIN(CAST(e.timestamp AS DATE)), MAX(CAST(e.timestamp AS DATE)) FROM {names["events"]} AS e
WHERE e.export_date = {lit(day)} AND {out_of_bound("e", day, window)}"""


def late_events(names: dict[str, str], day: dt.date, window: Window, lo: dt.date, hi: dt.date) -> str:
    """Per experiment: the day's out-of-bound events a unit's window would have taken. ``lo``/``hi``
    are the events' date span (``late_events_span``), so only those exposure days are read."""
    return f"""
SELECT u.experiment_id, COUNT(*) FROM {names["events"]} AS e
JOIN {names[UNITS]} AS u ON u.visitor_id = e.visitor_id
WHERE e.export_date = {lit(day)} AND {out_of_bound("e", day, window)}
  AND u.exposure_date BETWEEN {lit(_days(lo, -window.days))} AND {lit(hi)}
  AND NOT COALESCE(u.is_holdback, FALSE)
  AND e.timestamp >= u.exposure_timestamp
  AND e.timestamp <= u.exposure_timestamp + INTERVAL {int(window.hours)} HOUR
GROUP BY u.experiment_id"""


def string_literal(value: object, bigquery: bool) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value))
    text = str(value)
    if bigquery:  # GoogleSQL escapes with a backslash
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"
