"""Peak RSS of one day made of a single ~2 GB, single-row-group file, vs pandas reading it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from optimizely_assets.e3.layout import ExportType, account_prefix, success_key

START = dt.date(2024, 1, 1)


def _big_file_day(work: Path, gb: float) -> tuple[Path, dt.date, str]:
    """Generated in a child process, so this process's memory stays out of the measurement."""
    local, day = work / "memory", dt.date(2024, 6, 1)
    out = subprocess.run(
        [sys.executable, "-m", "bench.big_file", str(local / "source"), day.isoformat(), str(gb)],
        check=True,
        capture_output=True,
        text=True,
    )
    return local, day, out.stdout.strip()


def _peak_rss_mb(module: str, *args: str) -> tuple[float, float]:
    """Peak RSS of a fresh process running `module`, as that process measured itself."""
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.rss", module, *args], check=True, capture_output=True, text=True
    ).stdout
    elapsed = time.perf_counter() - t
    return float(out.strip().splitlines()[-1].split("=")[1]), elapsed


def bench_memory(work: Path, gb: float) -> dict:
    local, day, big = _big_file_day(work, gb)
    # The same run on an empty day: what Dagster + the libraries cost before any data.
    for export_type in ExportType:
        marker = work / "empty" / "source" / success_key(account_prefix("5935064"), export_type, day)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")
    size_mb = os.path.getsize(big) / 1e6
    import pyarrow.parquet as pq

    meta = pq.read_metadata(big)
    worker_mb, worker_s = _peak_rss_mb("bench.one_day", str(local), day.isoformat(), "worker")
    pipeline_mb, pipeline_s = _peak_rss_mb("bench.one_day", str(local), day.isoformat(), "all")
    naive_mb, _ = _peak_rss_mb("bench.read_pandas", big)
    idle_mb, _ = _peak_rss_mb("bench.one_day", str(work / "empty"), day.isoformat(), "all")
    return {
        "file_mb": round(size_mb),
        "row_groups": meta.num_row_groups,
        "rows": meta.num_rows,
        "worker_peak_rss_mb": round(worker_mb),
        "worker_s": round(worker_s, 1),
        "with_embedded_duckdb_peak_rss_mb": round(pipeline_mb),
        "with_embedded_duckdb_s": round(pipeline_s, 1),
        "pandas_read_peak_rss_mb": round(naive_mb),
        "pipeline_empty_day_peak_rss_mb": round(idle_mb),
    }
