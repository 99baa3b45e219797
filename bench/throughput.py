"""Throughput: the project end to end vs DuckDB's own read_parquet (the limit) and a naive pandas loader."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import duckdb

from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType

START = dt.date(2024, 1, 1)


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.parquet"))


INGEST_STEPS = ("source_files", "staged_files", "raw_table")


def bench_throughput(work: Path, days: int, rows: int) -> dict:
    """All three write the same rows into a DuckDB file, from the same Parquet files."""
    import pandas as pd
    import pyarrow as pa
    from dagster import DagsterInstance

    from bench.one_day import main as one_day
    from optimizely_assets.e3.schemas import SCHEMAS
    from optimizely_assets.warehouse import duckdb_sql

    local = work / "throughput"
    spec = ExportSpec(decisions_per_day=rows, events_per_day=rows)
    written = write_export(local / "source", date_range(START, days), spec)
    total_rows = sum(w.rows for w in written)
    files = _files(local / "source")
    total_mb = sum(os.path.getsize(f) for f in files) / 1e6

    steps: dict[str, float] = {}
    with DagsterInstance.ephemeral() as instance:
        t = time.perf_counter()
        for day in date_range(START, days):
            assert one_day(str(local), day.isoformat(), instance=instance) == 0
        pipeline_s = time.perf_counter() - t
        for run in instance.get_runs():
            for st in instance.get_run_step_stats(run.run_id):
                name = st.step_key.split("__", 1)[-1]  # `experiment_units_checks` has no type prefix
                steps[name] = steps.get(name, 0.0) + (st.end_time - st.start_time)
    ingest_s = sum(v for k, v in steps.items() if k in INGEST_STEPS)
    canonical_s = steps.get("canonical", 0.0)

    # (a) the physical limit: the warehouse reading the same files into a table, nothing else.
    t = time.perf_counter()
    with duckdb.connect(str(work / "limit.duckdb")) as con:
        for export_type in ExportType:
            type_files = [f for f in files if f"type={export_type.value}/" in f]
            con.execute(
                f"CREATE TABLE {export_type.value} AS SELECT * FROM read_parquet($f)", {"f": type_files}
            )
    limit_s = time.perf_counter() - t

    # (b) the naive loader: each file read with pandas, appended (pandas -> Arrow -> table, as
    # google-cloud-bigquery's load_table_from_dataframe does).
    t = time.perf_counter()
    with duckdb.connect(str(work / "naive.duckdb")) as con:
        for export_type in ExportType:
            con.execute(duckdb_sql.create_tables(export_type)[0])  # BY NAME below leaves export_date NULL
            for f in (f for f in files if f"type={export_type.value}/" in f):
                frame = pd.read_parquet(f)
                arrow = pa.Table.from_pandas(frame, schema=SCHEMAS[export_type], preserve_index=False)  # noqa: F841
                con.execute(f"INSERT INTO {export_type.value}_raw BY NAME SELECT * FROM arrow")
    naive_s = time.perf_counter() - t

    return {
        "days": days,
        "rows": total_rows,
        "mb": round(total_mb, 1),
        "limit_s": round(limit_s, 2),
        "naive_s": round(naive_s, 2),
        "ingest_s": round(ingest_s, 2),
        "canonical_s": round(canonical_s, 2),
        # The loading checks run inside the steps above; the rest is the experiment analysis.
        "analysis_s": round(sum(steps.values()) - ingest_s - canonical_s, 2),
        "pipeline_s": round(pipeline_s, 2),
        "ingest_rows_per_s": round(total_rows / ingest_s),
        "ingest_mb_per_s": round(total_mb / ingest_s, 1),
        "pipeline_rows_per_s": round(total_rows / pipeline_s),
        "pipeline_mb_per_s": round(total_mb / pipeline_s, 1),
        "limit_rows_per_s": round(total_rows / limit_s),
        "naive_rows_per_s": round(total_rows / naive_s),
        "ingest_vs_limit": round(limit_s / ingest_s, 2),
        "ingest_vs_naive": round(naive_s / ingest_s, 2),
        "pipeline_vs_limit": round(limit_s / pipeline_s, 2),
        "pipeline_vs_naive": round(naive_s / pipeline_s, 2),
    }
