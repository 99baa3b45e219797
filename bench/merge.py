"""Canonical MERGE cost: day 365 against day 1 (an outlier day against a clean day: merge_outliers.py).

Raw history is written in SQL (no files needed); the MERGE is the project's own
(``DuckDBWarehouse.merge_canonical``). Figures per case:
- wall time of the whole operation (median of repeats);
- canonical rows that reach the join, from DuckDB's profile of the MERGE statement;
- canonical partitions the window covers on BigQuery (export days, ``2H + 1``), beside the window
  the previous design derived from the rows' client timestamps (their min/max event date +- 1);
- for day 1 / H+1 / 365, a new day's whole warehouse work as a daily run does it (raw load from
  the day's Parquet files, MERGE, the canonical checks' query, and the checkpoint that writes the
  day into the file), on a fresh copy of the history each repeat. The day is a generated E3 day
  (every column, attributes, in-day duplicates); the history stays narrow: the window probe reads
  only ``uuid`` and ``export_date`` of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse import dedup_window
from optimizely_assets.warehouse import duckdb_sql as sql
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets.warehouse.duckdb_compact import compact
from optimizely_assets.warehouse.uuid_key import duckdb_expr

START = dt.date(2024, 1, 1)
HORIZON = 30
T = ExportType.DECISIONS
COLUMNS = ", ".join(sql.q(f.name) for f in SCHEMAS[T])
KEY = duckdb_expr("uuid")  # history as the MERGE writes it: with its uuid_key
# History uuids are UUID texts, as E3's are: their keys share the day's tag, so no row group of the
# window can be skipped by its min/max key (md5 hex alone would be keys of another tag, all skipped).
UUID_TEXT = "regexp_replace({h}, '(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})', '\\1-\\2-\\3-\\4-\\5')"


def _fill_raw(wh: DuckDBWarehouse, first: dt.date, days: int, rows_per_day: int, offset: int = 0) -> None:
    step = 86_400_000 // rows_per_day
    with wh.connect() as con:
        con.execute(
            f"""
            INSERT INTO decisions_raw (uuid, "timestamp", process_timestamp, visitor_id, experiment_id, export_date)
            SELECT {UUID_TEXT.format(h=f"md5(CAST(i + {offset} AS VARCHAR))")},
                   TIMESTAMPTZ '{first}' + to_milliseconds(i * {step}) - INTERVAL 40 SECOND,
                   TIMESTAMPTZ '{first}' + to_milliseconds(i * {step}),
                   'user_' || (i % 100000), '1', DATE '{first}' + CAST(i // {rows_per_day} AS INTEGER)
            FROM range({rows_per_day * days}) t(i)
            """
        )


def _canonical_rows_read(wh: DuckDBWarehouse, day: dt.date) -> int:
    """Canonical rows the MERGE's window probe reads (DuckDB skips row groups outside the window)."""
    text = sql.window_hits(T, dedup_window(day, HORIZON), sql.DAY_UUIDS)  # the MERGE's merge_hits
    with wh.transaction() as con:
        con.execute(sql.day_uuids(T, day))
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute("SET profiling_output = ''")
        plan = con.execute("EXPLAIN ANALYZE " + text).fetchall()[0][1]
        con.execute("PRAGMA disable_profiling")
        con.execute("ROLLBACK")
        con.execute("BEGIN TRANSACTION")  # the context manager commits an empty transaction

    def walk(node: dict) -> int:
        info = node.get("extra_info") or {}
        own = 0
        if node.get("operator_type") == "TABLE_SCAN" and str(info.get("Table", "")).endswith(".decisions"):
            own = int(node.get("operator_rows_scanned", 0))
        return own + sum(walk(c) for c in node.get("children", []))

    return walk(json.loads(plan))


def _timed_merge(wh: DuckDBWarehouse, day: dt.date, expected: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        with wh.connect() as con:
            con.execute("DELETE FROM decisions WHERE export_date = ?", [day])
            con.execute("CHECKPOINT")  # the previous repeat's WAL is not billed to this one
        t = time.perf_counter()
        stats = wh.merge_canonical(T, day, HORIZON)
        times.append(time.perf_counter() - t)
        assert stats.inserted == expected, stats
    return statistics.median(times)


def _e3_day(day: dt.date, rows: int, work: Path) -> tuple[list[StagedFile], int]:
    """A generated E3 decisions day of ``rows`` rows (new uuids); returns its files and distinct uuids."""
    root = work / f"e3-{day}"
    spec = ExportSpec(decisions_per_day=rows, cross_day_duplicates=0, seed=day.toordinal())
    (written,) = write_export(root, [day], spec, types=[T])
    files = [
        StagedFile(uri=str(root / k), source_uri=str(root / k), rows=n) for k, n in written.files.items()
    ]
    return files, len(written.unique_uuids)


def _fresh_copy(base: Path, run: Path) -> None:
    """The history file as the previous daily run left it, its bytes on disk before the clock starts:
    dirty pages of the copy would otherwise be flushed by the day's own commits."""
    for suffix in ("", ".wal"):
        Path(str(run) + suffix).unlink(missing_ok=True)
    shutil.copyfile(base, run)
    os.sync()


def _timed_new_day(
    wh: DuckDBWarehouse, day: dt.date, files: list[StagedFile], expected: int
) -> dict[str, float]:
    """A daily run's warehouse work on a new day, connected as its steps do: the raw load; the
    MERGE and the canonical checks' query in the canonical step's session; and the checkpoint that
    writes the day into the file (DuckDB defers it to a later commit; it is this day's work)."""
    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    wh.load_raw_day(T, day, files, [])
    t1 = time.perf_counter()
    with wh.session() as step:
        stats = step.merge_canonical(T, day, HORIZON)
        t2 = time.perf_counter()
        step.canonical_findings(T, day, HORIZON)
    t3 = time.perf_counter()
    with wh.connect() as con:
        con.execute("CHECKPOINT")
    t4 = time.perf_counter()
    assert stats.inserted == expected, stats
    parts.update(load_s=t1 - t0, merge_s=t2 - t1, checks_s=t3 - t2, checkpoint_s=t4 - t3, day_s=t4 - t0)
    return parts


def _timed_window_probes(wh: DuckDBWarehouse, day: dt.date, files: list[StagedFile]) -> dict[str, float]:
    """The dedup window's probe alone, as a new day meets it: on a fresh attach (the MERGE's, cold)
    and again on the same connection (warm: the checks' when run alone; after the MERGE they reuse
    what it read). Day 1 has no window; the cold one is the least that any later day costs more.
    Beside them, the same probes on the uuid strings (the previous release's), on the next fresh
    attach."""
    wh.load_raw_day(T, day, files, [])
    by_key = f"SELECT count(*) FROM ({sql.window_hits(T, dedup_window(day, HORIZON), sql.DAY_UUIDS)})"
    by_text = by_key.replace("uuid_key", "uuid")
    out = {}
    for name, probe in (("probe", by_key), ("string_probe", by_text)):
        with wh.connect() as con:
            con.execute(sql.day_uuids(T, day))
            t0 = time.perf_counter()
            con.execute(probe).fetchone()
            t1 = time.perf_counter()
            con.execute(probe).fetchone()
            t2 = time.perf_counter()
        out.update({f"{name}_cold_s": t1 - t0, f"{name}_warm_s": t2 - t1})
    return out


def _history_file(
    path: Path, day: dt.date, rows_per_day: int, storage_version: str | None, compacted: bool = False
) -> None:
    """Raw and canonical for the days before ``day``, as daily MERGEs would have left them (uuids
    are unique), checkpointed: the state a daily run finds. ``compacted``: then rewritten by the
    weekly compaction (the same history, in large row groups)."""
    wh = DuckDBWarehouse(path=str(path), storage_version=storage_version)
    wh.ensure_tables(T)
    if day > START:
        _fill_raw(wh, START, (day - START).days, rows_per_day)
    with wh.connect() as con:
        con.execute(
            f"INSERT INTO decisions ({COLUMNS}, export_date, event_date, uuid_key) SELECT {COLUMNS}, export_date, "
            f'CAST(coalesce("timestamp", process_timestamp) AS DATE), {KEY} FROM decisions_raw'
        )
        con.execute("CHECKPOINT")
    if compacted:
        compact(wh, min_small_row_groups=0)


def bench_history(work: Path, rows_per_day: int, days: int = 365, repeats: int = 7) -> dict:
    """A new day at day 1 (empty window), H+1 (window full) and N (window full, N-1 days of history),
    and at day N on the history as the weekly compaction leaves it (``dayN_compacted``).

    The day is a generated E3 day (every column, attributes, in-day duplicates; the same files on
    every warehouse). Each case has its own history file; each repeat runs on a fresh copy of it,
    so every repeat is the daily run that meets that history. Cases are timed interleaved, round
    by round. Days 1 and N also run on a file of DuckDB's default storage version (the effect of
    ``DuckDBWarehouse.storage_version``). Day N / day H+1 is the history effect; day H+1 / day 1
    the dedup window's; the window's probe alone bounds how close to day 1 a later day can come.
    """
    project = DuckDBWarehouse.model_fields["storage_version"].default
    last_day = START + dt.timedelta(days=days - 1)
    cases = {
        "day1": (START, project),
        f"day{HORIZON + 1}": (START + dt.timedelta(days=HORIZON), project),
        f"day{days}": (last_day, project),
        f"day{days}_compacted": (last_day, project),
        "day1_default_storage": (START, None),
        f"day{days}_default_storage": (last_day, None),
    }
    files, uuids = _e3_day(START, rows_per_day, work)
    out: dict = {"rows_per_day": rows_per_day, "storage_version": project}
    for name, (day, version) in cases.items():
        _history_file(
            work / f"history-{name}.duckdb", day, rows_per_day, version, name.endswith("_compacted")
        )
    with DuckDBWarehouse(path=str(work / f"history-day{days}.duckdb")).connect() as con:
        out["canonical_rows_before_last_day"] = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
    run = work / "history-run.duckdb"
    times: dict[str, dict[str, list[float]]] = {n: {} for n in cases}
    order = list(cases)
    probed = (f"day{HORIZON + 1}", f"day{days}", f"day{days}_compacted")
    for r in range(repeats):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            day, version = cases[name]
            _fresh_copy(work / f"history-{name}.duckdb", run)
            wh = DuckDBWarehouse(path=str(run), storage_version=version)
            parts = _timed_new_day(wh, day, files, uuids)
            if name in probed:
                _fresh_copy(work / f"history-{name}.duckdb", run)
                parts.update(_timed_window_probes(wh, day, files))
            for k, v in parts.items():
                times[name].setdefault(k, []).append(v)
    for name, (day, version) in cases.items():
        _fresh_copy(work / f"history-{name}.duckdb", run)
        wh = DuckDBWarehouse(path=str(run), storage_version=version)
        wh.load_raw_day(T, day, files, [])
        lo, hi = dedup_window(day, HORIZON)
        out[name] = {
            **{k: round(statistics.median(v), 3) for k, v in times[name].items()},
            "canonical_rows_read": _canonical_rows_read(wh, day),
            "bigquery_partitions_in_window": (hi - lo).days + 1,
        }
    last, full = out[f"day{days}"], out[f"day{HORIZON + 1}"]
    out["ratio_vs_day1"] = round(last["day_s"] / out["day1"]["day_s"], 2)
    out[f"ratio_vs_day{HORIZON + 1}"] = round(last["day_s"] / full["day_s"], 2)
    compacted = out[f"day{days}_compacted"]
    out["compacted_ratio_vs_day1"] = round(compacted["day_s"] / out["day1"]["day_s"], 2)
    out[f"compacted_ratio_vs_day{HORIZON + 1}"] = round(compacted["day_s"] / full["day_s"], 2)
    # The least day N can cost: day 1 plus the MERGE's probe of the window, which the dedup
    # guarantee needs (the checks after it reuse what it read).
    out["window_floor_ratio_vs_day1"] = round(
        (out["day1"]["day_s"] + last["probe_cold_s"]) / out["day1"]["day_s"], 2
    )
    out["default_storage_ratio_vs_day1"] = round(
        out[f"day{days}_default_storage"]["day_s"] / out["day1_default_storage"]["day_s"], 2
    )
    return out
