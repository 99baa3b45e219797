"""Canonical MERGE cost with outliers: the same day with and without one row at 1970-01-01 and one
at 2099-12-31 (the window is of export days, so the MERGE reads as much either way)."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

from bench.merge import COLUMNS, HORIZON, KEY, START, T, _canonical_rows_read, _fill_raw, _timed_merge
from optimizely_assets.warehouse import dedup_window
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse


def _old_window_days(wh: DuckDBWarehouse, day: dt.date) -> int:
    """Width of the previous design's window: event dates of the day's rows, widened by 1 day."""
    with wh.connect() as con:
        lo, hi = con.execute(
            'SELECT min(CAST(coalesce("timestamp", process_timestamp) AS DATE)) - 1, '
            'max(CAST(coalesce("timestamp", process_timestamp) AS DATE)) + 1 FROM decisions_raw WHERE export_date = ?',
            [day],
        ).fetchone()
    return (hi - lo).days + 1


def case(wh: DuckDBWarehouse, day: dt.date, expected: int, repeats: int) -> dict:
    seconds = _timed_merge(wh, day, expected, repeats)
    lo, hi = dedup_window(day, HORIZON)
    return {
        "merge_s": round(seconds, 3),
        "canonical_rows_read": _canonical_rows_read(wh, day),
        "bigquery_partitions_in_window": (hi - lo).days + 1,
        "previous_design_partitions": _old_window_days(wh, day),
    }


def bench_outliers(work: Path, rows_per_day: int, history_days: int = 60, repeats: int = 7) -> dict:
    """The same day with and without one row at 1970-01-01 and one at 2099-12-31, timed interleaved."""
    last = START + dt.timedelta(days=history_days - 1)
    warehouses = {}
    for name in ("clean", "outliers"):
        wh = warehouses[name] = DuckDBWarehouse(path=str(work / f"outliers-{name}.duckdb"))
        wh.ensure_tables(T)
        _fill_raw(wh, START, history_days, rows_per_day)
        with wh.connect() as con:
            con.execute(  # history before the measured day, as MERGEs would have left it
                f"INSERT INTO decisions ({COLUMNS}, export_date, event_date, uuid_key) SELECT {COLUMNS}, export_date, "
                f'CAST(coalesce("timestamp", process_timestamp) AS DATE), {KEY} FROM decisions_raw WHERE export_date < ?',
                [last],
            )
            if name == "outliers":
                con.execute(
                    'UPDATE decisions_raw SET "timestamp" = CASE WHEN uuid = (SELECT min(uuid) FROM decisions_raw '
                    "WHERE export_date = ?) THEN TIMESTAMPTZ '1970-01-01 00:00:00+00' ELSE TIMESTAMPTZ "
                    "'2099-12-31 12:00:00+00' END WHERE uuid IN (SELECT uuid FROM decisions_raw WHERE export_date = ? "
                    "ORDER BY uuid LIMIT 2)",
                    [last, last],
                )
    times: dict[str, list[float]] = {"clean": [], "outliers": []}
    for _ in range(repeats):  # interleaved: both cases see the same machine
        for name, wh in warehouses.items():
            times[name].append(_timed_merge(wh, last, rows_per_day, 1))
    results = {
        name: {**case(wh, last, rows_per_day, 1), "merge_s": round(statistics.median(times[name]), 3)}
        for name, wh in warehouses.items()
    }
    results["ratio"] = round(results["outliers"]["merge_s"] / results["clean"]["merge_s"], 2)
    return results
