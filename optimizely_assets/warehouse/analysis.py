"""Runs the experiment analysis SQL (``analysis_sql``) on either warehouse backend.

The row work stays in the warehouse: every step is a statement over the canonical tables; only
the experiments dimension (names from the REST API) and small result sets cross the worker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from optimizely_assets.analysis.inference import Sums
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import analysis_sql as sql
from optimizely_assets.warehouse import metrics_sql, results_sql
from optimizely_assets.warehouse import redelivery_sql as redelivery
from optimizely_assets.warehouse.base import Warehouse, table_names


@dataclass(frozen=True)
class ExperimentRow:
    experiment_id: str
    experiment_name: str | None
    variation_id: str
    variation_name: str | None
    weight: float | None  # share of traffic (any scale); None when unknown
    source: str  # "api", "synthetic" or "ids"
    is_baseline: bool = False  # the variation others are compared with (analysis/baselines.py)


@dataclass(frozen=True)
class ResultRow:
    experiment_id: str
    experiment_name: str
    variation_id: str
    variation_name: str
    event_name: str | None
    units: int
    converting_units: int
    events: int
    revenue: int
    weight: float | None

    @property
    def conversion_rate(self) -> float:
        return self.converting_units / self.units if self.units else 0.0


@dataclass(frozen=True)
class MetricSums:
    experiment_id: str | None
    variation_id: str | None
    event_name: str
    metric: str
    sums: Sums


class ExperimentAnalysis:
    """The analysis tables of one warehouse: ``analysis_sql.ANALYSIS_TABLES``."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.bigquery = warehouse.kind == "bigquery"
        ref = warehouse.ref
        self.names = {t: ref(t) for t in sql.ANALYSIS_TABLES}
        for export_type in ExportType:
            self.names[export_type.value] = ref(table_names(export_type).canonical)

    # --- two primitives per backend ------------------------------------------------------

    def execute(self, statements: list[str | tuple[str, str]]) -> int:
        """Run the statements (DuckDB: one transaction; BigQuery: each a single-statement job; a
        (table, statement) pair is a write into that table: labelled, its orphans settled first,
        bigquery_jobs.py). Returns the rows the last one affected."""
        if self.bigquery:
            affected = 0
            for item in statements:
                if isinstance(item, tuple):
                    job = self.warehouse.run_write(item[1], item[0])  # type: ignore[attr-defined]
                else:
                    job = self.warehouse.client.query(item, job_config=self.warehouse.query_config())  # type: ignore[attr-defined]
                    job.result()
                affected = int(job.num_dml_affected_rows or 0)
            return affected
        with self.warehouse.transaction() as con:  # type: ignore[attr-defined]
            result = None
            for item in statements:
                result = con.execute(item[1] if isinstance(item, tuple) else item).fetchall()
        return int(result[0][0]) if result and result[0] and isinstance(result[0][0], int) else 0

    def query(self, text: str) -> list[tuple]:
        if self.bigquery:
            rows, _ = self.warehouse.run_query(text)  # type: ignore[attr-defined]
            return rows
        with self.warehouse.connect(read_only=False) as con:  # type: ignore[attr-defined]
            return con.execute(text).fetchall()

    # --- the steps -------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        if self.bigquery:
            self.warehouse.ensure_dataset()  # type: ignore[attr-defined]
        for text in sql.create_tables(self.names, self.bigquery):
            self.execute([text])

    def write_units(self, day: dt.date, window: sql.Window) -> dict[str, int]:
        """Fold the day's decisions into units. Events attributed to a unit that moves to an earlier
        decision are deleted first: a re-run after a failure between the two finds them again."""
        retracted = int(
            self.query(f"SELECT COUNT(*) FROM ({redelivery.retracted_units(self.names, day)}) AS r")[0][0]
        )
        if retracted:  # a re-delivered day took a unit's decision away: its events go, it is derived again
            self.execute(
                [
                    (sql.EVENTS, redelivery.delete_retracted_events(self.names, day)),
                    (sql.UNITS, redelivery.rederive_units(self.names, day, window)),
                ]
            )
        moved = int(
            self.query(f"SELECT COUNT(*) FROM ({sql.moved_units(self.names, day, window)}) AS m")[0][0]
        )
        before = self.count_all(sql.UNITS)
        statements = [(sql.EVENTS, sql.delete_moved_events(self.names, day, window))] if moved else []
        self.execute([*statements, (sql.UNITS, sql.merge_units(self.names, day, window))])
        return {
            "inserted": self.count_all(sql.UNITS) - before,
            "moved_earlier": moved,
            "retracted": retracted,
        }

    def write_events(self, day: dt.date, window: sql.Window) -> int:
        self.execute([(sql.EVENTS, s) for s in sql.replace_events(self.names, day, window, self.bigquery)])
        return self.count(sql.EVENTS, day)

    def count(self, table: str, day: dt.date, column: str = "export_date") -> int:
        return int(
            self.query(f"SELECT COUNT(*) FROM {self.names[table]} WHERE {column} = {sql.lit(day)}")[0][0]
        )

    def count_all(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {self.names[table]}")[0][0])

    def rebuild_results(self, exclude_multiple: bool = False) -> None:
        self.execute([(sql.RESULTS, results_sql.rebuild_results(self.names, exclude_multiple))])

    # --- rows beyond the lateness bound, units in several variations ------------------------

    def late_decisions(self, day: dt.date, window: sql.Window) -> dict[str, int]:
        return {str(e): int(n) for e, n in self.query(sql.late_decisions(self.names, day, window))}

    def late_events(self, day: dt.date, window: sql.Window) -> tuple[int, dict[str, int]]:
        """The day's events outside the bound, and per experiment those a unit would have taken."""
        total, lo, hi = self.query(sql.late_events_span(self.names, day, window))[0]
        if not total:
            return 0, {}
        rows = self.query(sql.late_events(self.names, day, window, lo, hi))
        return int(total), {str(e): int(n) for e, n in rows}

    def multiple_variation_units(self) -> dict[str, tuple[int, int]]:
        return {
            str(e): (int(n), int(m))
            for e, n, m in self.query(results_sql.multiple_variation_units(self.names))
        }

    def allocations(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for e, v, w in self.query(results_sql.allocations(self.names)):
            out.setdefault(str(e), {})[str(v)] = float(w)
        return out

    def replace_experiments(self, rows: list[ExperimentRow]) -> None:
        statements = results_sql.replace_experiments(self.names, [r.__dict__ for r in rows], self.bigquery)
        self.execute([(sql.EXPERIMENTS, s) for s in statements])

    def baselines(self) -> dict[str, str]:
        """experiment id -> its baseline variation, as the ``experiments`` asset chose it."""
        return {
            str(e): str(v)
            for e, v in self.query(
                f"SELECT experiment_id, variation_id FROM {self.names[sql.EXPERIMENTS]} WHERE is_baseline"
            )
        }

    def experiment_ids(self) -> list[str]:
        return [
            r[0] for r in self.query(f"SELECT DISTINCT experiment_id FROM {self.names[sql.UNITS]} ORDER BY 1")
        ]

    def metric_sums(
        self, exclude_multiple: bool = False, experiment_id: str | None = None
    ) -> list[MetricSums]:
        """The sufficient statistics of every experiment's metrics (metrics_sql.py), one query."""
        text = metrics_sql.metric_sums(self.names, self.bigquery, exclude_multiple, experiment_id)
        return [_metric_sums(r) for r in self.query(text)]

    def daily_metric_sums(
        self, experiment_id: str, exclude_multiple: bool = False
    ) -> dict[dt.date, list[MetricSums]]:
        """The same sums per exposure day of the units (the report's cumulative lift), one query."""
        text = metrics_sql.metric_sums(
            self.names, self.bigquery, exclude_multiple, experiment_id, by_day=True
        )
        out: dict[dt.date, list[MetricSums]] = {}
        for *row, day in self.query(text):
            out.setdefault(day, []).append(_metric_sums(row))
        return dict(sorted(out.items()))

    def metrics(self, experiment_id: str | None = None) -> list:
        """``experiment_metrics`` as analysis/metrics.py's MetricRow, by event, metric, variation."""
        from optimizely_assets.analysis.metrics import MetricRow

        cols = [c for c, *_ in sql.COLUMNS[sql.METRICS]]
        where = (
            f" WHERE experiment_id = {sql.string_literal(experiment_id, self.bigquery)}"
            if experiment_id
            else ""
        )
        text = (
            f"SELECT {', '.join(cols)} FROM {self.names[sql.METRICS]}{where} "
            "ORDER BY experiment_id, event_name, metric, variation_id"
        )
        return [MetricRow(**dict(zip(cols, r, strict=True))) for r in self.query(text)]

    def replace_metrics(self, rows: list) -> None:
        """``experiment_metrics`` replaced whole by ``rows`` (analysis/metrics.py's MetricRow)."""
        statements = results_sql.replace_experiments(
            self.names, [r.__dict__ for r in rows], self.bigquery, sql.METRICS
        )
        self.execute([(sql.METRICS, s) for s in statements])

    def results(self, experiment_id: str | None = None) -> list[ResultRow]:
        return [ResultRow(*r) for r in self.query(results_sql.results_rows(self.names, experiment_id))]

    def units_not_in_decisions(self, day: dt.date, window: sql.Window) -> dict[str, int]:
        return {
            str(e): int(n) for e, n in self.query(results_sql.units_not_in_decisions(self.names, day, window))
        }

    def visitors_vs_units(self, day: dt.date, window: sql.Window) -> dict[str, tuple[int, int, int]]:
        """Per experiment of the day: (visitors, their units, units later than a decision of the day)."""
        return {
            str(e): (int(v), int(u), int(lt))
            for e, v, u, lt in self.query(results_sql.visitors_vs_units(self.names, day, window))
        }


def _metric_sums(row) -> MetricSums:
    e, v, n, m, u, s, ss, ps, pss, sp = row
    return MetricSums(
        None if e is None else str(e),
        None if v is None else str(v),
        str(n),
        str(m),
        Sums(int(u), float(s), float(ss), float(ps), float(pss), float(sp)),
    )
