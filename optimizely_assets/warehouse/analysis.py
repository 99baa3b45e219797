"""Runs the experiment analysis SQL (``analysis_sql``) on either warehouse backend.

The row work stays in the warehouse: every step is a statement over the canonical tables; only
the experiments dimension (names from the REST API) and small result sets cross the worker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import analysis_sql as sql
from optimizely_assets.warehouse.base import Warehouse, table_names


@dataclass(frozen=True)
class ExperimentRow:
    experiment_id: str
    experiment_name: str | None
    variation_id: str
    variation_name: str | None
    weight: float | None  # share of traffic (any scale); None when unknown
    source: str  # "api", "synthetic" or "ids"


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


class ExperimentAnalysis:
    """The analysis tables of one warehouse: ``analysis_sql.ANALYSIS_TABLES``."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self.bigquery = warehouse.kind == "bigquery"
        ref = warehouse.ref if self.bigquery else (lambda name: name)  # type: ignore[attr-defined]
        self.names = {t: ref(t) for t in sql.ANALYSIS_TABLES}
        for export_type in ExportType:
            self.names[export_type.value] = ref(table_names(export_type).canonical)

    # --- two primitives per backend ------------------------------------------------------

    def execute(self, statements: list[str]) -> int:
        """Run the statements (DuckDB: one transaction; BigQuery: each a single-statement job).
        Returns the rows the last one affected."""
        if self.bigquery:
            affected = 0
            for text in statements:
                job = self.warehouse.client.query(text, job_config=self.warehouse.query_config())  # type: ignore[attr-defined]
                job.result()
                affected = int(job.num_dml_affected_rows or 0)
            return affected
        with self.warehouse.transaction() as con:  # type: ignore[attr-defined]
            result = None
            for text in statements:
                result = con.execute(text).fetchall()
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
            self.warehouse.client.create_dataset(  # type: ignore[attr-defined]
                f"{self.warehouse.project}.{self.warehouse.dataset}",
                exists_ok=True,  # type: ignore[attr-defined]
            )
        for text in sql.create_tables(self.names, self.bigquery):
            self.execute([text])

    def write_units(self, day: dt.date) -> int:
        return self.execute([sql.insert_units(self.names, day)])

    def write_events(self, day: dt.date, window: sql.Window) -> int:
        self.execute(sql.replace_events(self.names, day, window, self.bigquery))
        return self.count(sql.EVENTS, day)

    def count(self, table: str, day: dt.date, column: str = "export_date") -> int:
        return int(
            self.query(f"SELECT COUNT(*) FROM {self.names[table]} WHERE {column} = {sql.lit(day)}")[0][0]
        )

    def rebuild_results(self) -> None:
        self.execute([sql.rebuild_results(self.names)])

    def replace_experiments(self, rows: list[ExperimentRow]) -> None:
        self.execute(sql.replace_experiments(self.names, [r.__dict__ for r in rows], self.bigquery))

    def experiment_ids(self) -> list[str]:
        return [
            r[0] for r in self.query(f"SELECT DISTINCT experiment_id FROM {self.names[sql.UNITS]} ORDER BY 1")
        ]

    def results(self, experiment_id: str | None = None) -> list[ResultRow]:
        return [ResultRow(*r) for r in self.query(sql.results_rows(self.names, experiment_id))]

    def units_not_in_decisions(self, day: dt.date) -> dict[str, int]:
        return {str(e): int(n) for e, n in self.query(sql.units_not_in_decisions(self.names, day))}

    def visitors_vs_units(self, day: dt.date) -> dict[str, tuple[int, int]]:
        return {str(e): (int(v), int(u)) for e, v, u in self.query(sql.visitors_vs_units(self.names, day))}
