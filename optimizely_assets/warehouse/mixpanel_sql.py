"""SQL of the Mixpanel feed, both dialects: a day's canonical rows to send, and the dead letters."""

from __future__ import annotations

import datetime as dt

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.analysis_sql import EXPERIMENTS, string_literal
from optimizely_assets.warehouse.base import EXPORT_DATE, table_names

DEAD_LETTER = "mixpanel_dead_letter"
COLUMNS = [  # name, DuckDB type, BigQuery type
    ("export_type", "VARCHAR", "STRING"),
    (EXPORT_DATE, "DATE", "DATE"),
    ("uuid", "VARCHAR", "STRING"),
    ("insert_id", "VARCHAR", "STRING"),
    ("reason", "VARCHAR", "STRING"),
    ("failed_at", "TIMESTAMPTZ", "TIMESTAMP"),
]


def create_dead_letter(name: str, bigquery: bool) -> str:
    body = ", ".join(f"{c} {bq if bigquery else duck}" for c, duck, bq in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {name} ({body})"


def _day(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def day_rows(ref, export_type: ExportType, day: dt.date) -> str:
    """The canonical rows first delivered on ``day`` (canonical's export_date), decisions with
    their experiment's and variation's names."""
    canonical = ref(table_names(export_type).canonical)
    if export_type is ExportType.EVENTS:
        return f"SELECT c.* FROM {canonical} AS c WHERE c.{EXPORT_DATE} = {_day(day)}"
    return (
        f"SELECT c.*, x.experiment_name AS _experiment_name, x.variation_name AS _variation_name "
        f"FROM {canonical} AS c LEFT JOIN {ref(EXPERIMENTS)} AS x "
        f"ON x.experiment_id = c.experiment_id AND x.variation_id = c.variation_id "
        f"WHERE c.{EXPORT_DATE} = {_day(day)}"
    )


def day_count(ref, export_type: ExportType, day: dt.date) -> str:
    return f"SELECT COUNT(*) FROM {ref(table_names(export_type).canonical)} WHERE {EXPORT_DATE} = {_day(day)}"


def replace_dead_letters(
    name: str,
    export_type: ExportType,
    day: dt.date,
    rows: list[tuple[str, str, str]],
    now: str,
    bigquery: bool,
) -> list[str]:
    """The day's dead letters replaced by ``rows`` ((uuid, insert_id, reason)): a re-run's own."""
    lit = lambda v: string_literal(v, bigquery)  # noqa: E731
    out = [f"DELETE FROM {name} WHERE export_type = {lit(export_type.value)} AND {EXPORT_DATE} = {_day(day)}"]
    for i in range(0, len(rows), 1_000):
        values = ", ".join(
            f"({lit(export_type.value)}, {_day(day)}, {lit(u)}, {lit(iid)}, {lit(reason[:1000])}, TIMESTAMP '{now}')"
            for u, iid, reason in rows[i : i + 1_000]
        )
        out.append(f"INSERT INTO {name} ({', '.join(c for c, *_ in COLUMNS)}) VALUES {values}")
    return out
