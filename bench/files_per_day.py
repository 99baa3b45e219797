"""Files per day: one day of both types as ~1,000 small files per type vs ~10 larger ones, same rows.

Each layout is loaded end to end by ``bench.one_day`` in a fresh process (interleaved, median of
rounds), which reports its own peak RSS; the embedded warehouse keeps its DuckDB memory_limit.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from optimizely_assets.demo.synthetic import ExportSpec, write_export

DAY = dt.date(2024, 3, 1)


def _run(local: Path) -> tuple[float, float]:
    for leftover in ("staging", "warehouse.duckdb", "warehouse.duckdb.wal", "dagster_io"):
        shutil.rmtree(local / leftover, ignore_errors=True) if (local / leftover).is_dir() else (
            local / leftover
        ).unlink(missing_ok=True)
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.rss", "bench.one_day", str(local), DAY.isoformat(), "all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return time.perf_counter() - t, float(out.strip().splitlines()[-1].split("=")[1])


def bench_files_per_day(work: Path, rows_per_type: int = 200_000, rounds: int = 3) -> dict:
    layouts = {"10 files": 10, "1,000 files": 1_000}
    locals_ = {}
    for name, files in layouts.items():
        local = work / f"files_{files}"
        spec = ExportSpec(decisions_per_day=rows_per_type, events_per_day=rows_per_type, files_per_day=files)
        written = write_export(local / "source", [DAY], spec)
        locals_[name] = (local, sum(len(w.files) for w in written), sum(w.rows for w in written))
    runs: dict[str, list[tuple[float, float]]] = {n: [] for n in layouts}
    names = list(layouts)
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            runs[name].append(_run(locals_[name][0]))
    out: dict = {}
    for name in names:
        out[name] = {
            "files": locals_[name][1],
            "rows": locals_[name][2],
            "wall_s": round(statistics.median(w for w, _ in runs[name]), 2),
            "peak_rss_mb": round(max(m for _, m in runs[name])),
        }
    out["ratio"] = round(out["1,000 files"]["wall_s"] / out["10 files"]["wall_s"], 2)
    return out


def report(r: dict) -> None:
    print("files per day, one day end to end in a fresh process (median wall, max peak RSS):")
    for name in ("10 files", "1,000 files"):
        x = r[name]
        print(
            f"  {name:<12} {x['files']:>5} files {x['rows']:>9,} rows  {x['wall_s']:6.2f} s  {x['peak_rss_mb']} MB"
        )
    print(f"  1,000 / 10 files: {r['ratio']}x (target <= 1.5)")
