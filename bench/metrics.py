"""The statistics step at scale: experiment_metrics for 1 M units, against its baselines.

The step is one aggregate query (warehouse/metrics_sql.py) and arithmetic on the rows it returns
(a few per variation, event and metric). Written in SQL on DuckDB, with no files: units over 14
exposure days in 10 experiments x 2 variations, attributed events for about a third of them, and
the canonical events the CUPED covariate reads (the 7 days before each exposure).
Figures per size (median of repeats):
- the step: the query, the inference, and how many statements and rows crossed to the worker;
- baseline 1, the same step at a tenth of the units: the step should scale with the warehouse's
  scan, and its Python part should not grow at all;
- baseline 2, the usual notebook: fetch one row per unit and metric into pandas and group there
  (the rows, and the time, the warehouse approach does not move).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from optimizely_assets.analysis.metrics import experiment_metrics
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import metrics_sql
from optimizely_assets.warehouse.analysis import ExperimentAnalysis
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

EVENT_NAMES = ("add_to_cart", "purchase", "signup")


def _fill(analysis: ExperimentAnalysis, units: int) -> None:
    for export_type in ExportType:
        analysis.warehouse.ensure_tables(export_type)
    analysis.ensure_tables()
    n = analysis.names
    names = "['" + "', '".join(EVENT_NAMES) + "']"
    analysis.execute(
        [
            f"""INSERT INTO {n["experiment_units"]} (experiment_id, visitor_id, variation_id, is_holdback,
                exposure_timestamp, exposure_date, decision_uuid, export_date, multiple_variations)
            SELECT CAST(i % 10 AS VARCHAR), 'v' || i, CAST(hash(i) % 2 AS VARCHAR), FALSE, ts, CAST(ts AS DATE),
                   md5(CAST(i AS VARCHAR)), CAST(ts AS DATE), FALSE
            FROM (SELECT i, TIMESTAMPTZ '2024-01-08' + to_seconds(hash(i * 7) % (14 * 86400)) AS ts
                  FROM range({units}) t(i))""",
            f"""INSERT INTO {n["experiment_events"]} (experiment_id, visitor_id, variation_id, event_uuid,
                event_name, event_timestamp, revenue, exposure_timestamp, export_date, decision_uuid)
            SELECT u.experiment_id, u.visitor_id, u.variation_id, md5(u.visitor_id || k),
                   {names}[CAST(1 + hash(u.visitor_id || k) % 3 AS BIGINT)], u.exposure_timestamp + INTERVAL 1 HOUR,
                   CASE WHEN hash(k || u.visitor_id) % 3 = 1 THEN 100 + hash(u.visitor_id) % 5000 END,
                   u.exposure_timestamp, u.export_date, u.decision_uuid
            FROM {n["experiment_units"]} AS u, range(CAST(1 + hash(u.visitor_id) % 3 AS BIGINT)) r(k)
            WHERE hash(u.visitor_id || 'c') % 3 = 0""",
            f"""INSERT INTO {n["events"]} (uuid, timestamp, visitor_id, event_name, revenue, export_date)
            SELECT md5('pre' || u.visitor_id), u.exposure_timestamp - INTERVAL 2 DAY, u.visitor_id,
                   {names}[CAST(1 + hash(u.visitor_id) % 3 AS BIGINT)], 250, u.export_date - 2
            FROM {n["experiment_units"]} AS u WHERE hash(u.visitor_id || 'p') % 4 = 0""",
        ]
    )


def _step(analysis: ExperimentAnalysis) -> dict:
    calls: list[int] = []
    query = analysis.query

    def counted(text: str) -> list[tuple]:
        rows = query(text)
        calls.append(len(rows))
        return rows

    analysis.query = counted  # type: ignore[method-assign]
    t0 = time.perf_counter()
    sums = analysis.metric_sums()
    t1 = time.perf_counter()
    rows = experiment_metrics(sums)
    t2 = time.perf_counter()
    analysis.query = query  # type: ignore[method-assign]
    return {
        "query_s": t1 - t0,
        "inference_s": t2 - t1,
        "statements": len(calls),
        "rows_to_worker": sum(calls),
        "metric_rows": len(rows),
    }


def _notebook(analysis: ExperimentAnalysis) -> dict:
    """One row per unit x event x metric into pandas, grouped there (the per-unit CTEs as they are)."""
    text = metrics_sql.metric_sums(analysis.names, False)
    per_unit = text.split("\nSELECT experiment_id, variation_id, event_name, metric, COUNT(*)")[0]
    t0 = time.perf_counter()
    with analysis.warehouse.connect(read_only=True) as con:  # type: ignore[attr-defined]
        frame = con.execute(per_unit + "\nSELECT * FROM unit_metrics").fetchdf()
    frame["yy"], frame["xx"], frame["xy"] = frame.y * frame.y, frame.x * frame.x, frame.x * frame.y
    grouped = frame.groupby(["experiment_id", "variation_id", "event_name", "metric"]).agg(
        units=("y", "size"), sum=("y", "sum"), sum_squares=("yy", "sum")
    )
    return {"s": time.perf_counter() - t0, "rows_to_worker": len(frame), "groups": len(grouped)}


def bench_metrics(work: Path, units: int = 1_000_000, repeats: int = 3) -> dict:
    out: dict = {"units": units}
    for label, n in (("full", units), ("tenth", units // 10)):
        analysis = ExperimentAnalysis(DuckDBWarehouse(path=str(work / f"metrics_{n}.duckdb")))
        _fill(analysis, n)
        runs = [_step(analysis) for _ in range(repeats)]
        out[label] = {
            "units": n,
            "query_s": round(statistics.median(r["query_s"] for r in runs), 3),
            "inference_s": round(statistics.median(r["inference_s"] for r in runs), 4),
            **{k: runs[0][k] for k in ("statements", "rows_to_worker", "metric_rows")},
        }
        if label == "full":
            notebooks = [_notebook(analysis) for _ in range(repeats)]
            out["notebook"] = {
                "s": round(statistics.median(r["s"] for r in notebooks), 3),
                "rows_to_worker": notebooks[0]["rows_to_worker"],
            }
    return out


def report(r: dict) -> None:
    full, tenth, notebook = r["full"], r["tenth"], r["notebook"]
    print(
        f"metrics: experiment_metrics for {full['units']:,} units (10 experiments x 2 variations x 3 events)"
    )
    print(
        f"  step: {full['statements']} statement, {full['rows_to_worker']} rows to the worker; query "
        f"{full['query_s']} s, inference {full['inference_s']} s"
    )
    print(
        f"  baseline {tenth['units']:,} units: query {tenth['query_s']} s, inference {tenth['inference_s']} s "
        f"(x{full['query_s'] / max(tenth['query_s'], 1e-9):.1f} query for x10 units; the inference does not grow)"
    )
    print(
        f"  baseline per-unit rows into pandas: {notebook['s']} s, {notebook['rows_to_worker']:,} rows "
        f"({notebook['s'] / max(full['query_s'] + full['inference_s'], 1e-9):.1f}x the step)"
    )
