"""End to end against its peers, on the same files, interleaved, each contender in a fresh process.

The limit (minimal SQL job), dlt (the loader users would pick) and the naive pandas loader (a floor)
each load the same generated days; the project runs its daily job on the embedded default.
Wall time and CPU (user + system of the child process) per contender are the medians over rounds;
contenders run in a rotated order each round so drift on the machine hits all of them alike. The
project's clock includes creating its Dagster instance on a fresh home, as a first run does.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.contenders import canonical_rows, prepare_project
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

START = dt.date(2024, 1, 1)
ROW_GROUP_SIZE = DuckDBWarehouse.model_fields["row_group_size"].default
STORAGE_VERSION = DuckDBWarehouse.model_fields["storage_version"].default


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(name: str, export_dir: Path, work: Path, days: list[dt.date]) -> tuple[float, float]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if name == "project":  # its dagster.yaml in place; the instance is created inside the clock
        prepare_project(work)
    cpu0, t0 = _child_cpu(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.contenders", name, str(export_dir), str(work), *map(str, days)],
        check=True,
        env={
            **os.environ,
            "BENCH_ROW_GROUP_SIZE": str(ROW_GROUP_SIZE),
            "BENCH_STORAGE_VERSION": STORAGE_VERSION or "",
        },
    )
    return time.perf_counter() - t0, _child_cpu() - cpu0


def bench_peers(work: Path, days: int = 3, rows_per_type: int = 200_000, rounds: int = 3) -> dict:
    export_dir = work / "peers_export"
    spec = ExportSpec(decisions_per_day=rows_per_type, events_per_day=rows_per_type)
    written = write_export(export_dir, date_range(START, days), spec)
    day_list = date_range(START, days)
    names = ["project", "limit", "limit_rg", "naive"] + (["dlt"] if importlib.util.find_spec("dlt") else [])
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    rows: dict[str, dict] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_run(name, export_dir, work / name, day_list))
            rows[name] = canonical_rows(name, work / name)
    out: dict = {"days": days, "rows": sum(w.rows for w in written), "rounds": rounds, "canonical": rows}
    for name in names:
        out[name] = {
            "wall_s": round(statistics.median(w for w, _ in times[name]), 2),
            "cpu_s": round(statistics.median(c for _, c in times[name]), 2),
        }
    p = out["project"]
    for name in names[1:]:
        out[f"vs_{name}"] = {
            # > 1: the project is faster; the limit's ratio is at most ~1 by definition.
            "wall": round(out[name]["wall_s"] / p["wall_s"], 2),
            "cpu": round(out[name]["cpu_s"] / p["cpu_s"], 2),
        }
    return out


def report(r: dict) -> None:
    print(
        f"end to end, {r['rows']:,} rows in {r['days']} days x 2 types, median of {r['rounds']} interleaved rounds:"
    )
    for name in ("project", "limit", "limit_rg", "dlt", "naive"):
        if name in r:
            ratio = (
                ""
                if name == "project"
                else (
                    f"   project = {r[f'vs_{name}']['wall']}x its speed (wall), {r[f'vs_{name}']['cpu']}x (CPU)"
                )
            )
            print(f"  {name:<9}{r[name]['wall_s']:7.2f} s wall {r[name]['cpu_s']:7.2f} s CPU{ratio}")
    print(
        "  targets: >= 1.0x the limit and > 1.0x dlt, wall and CPU; rows per contender (rows, distinct uuids):"
    )
    for name, counts in r["canonical"].items():
        print(f"    {name:<8} {counts}")
