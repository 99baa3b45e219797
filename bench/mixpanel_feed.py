"""The Mixpanel feed's memory and throughput on one big day, against the Import API stand-in.

A canonical ``events`` day is written in SQL (no files) until its events' JSON reaches the target
size; the stand-in (optimizely_assets_tests/mixpanel_standin.py) runs in a process of its own.
Figures, each from a fresh process measuring its own peak RSS (bench/rss.py):
- the feed: rows, JSON MB sent, wall time, events/s and MB/s, peak RSS (target: within 250 MB);
- baseline: the same day read whole into memory (``fetch_arrow_table``), as a loader without
  streaming would before sending: its peak RSS.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

DAY = dt.date(2024, 6, 1)
BYTES_PER_EVENT = 262  # JSON of one generated event (the child prints the MB it sent)


def _fill(path: Path, rows: int) -> None:
    from optimizely_assets.e3.layout import ExportType
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(path))
    wh.ensure_tables(ExportType.EVENTS)
    with wh.connect() as con:
        con.execute(
            f"""INSERT INTO events (uuid, timestamp, process_timestamp, visitor_id, session_id, account_id,
                entity_id, attributes, user_ip, user_agent, referer, event_type, event_name, revenue, value,
                quantity, tags, revision, client_engine, client_version, export_date, event_date)
            SELECT uuid(), TIMESTAMPTZ '{DAY}' + to_milliseconds(i % 86400000),
                   TIMESTAMPTZ '{DAY}' + to_milliseconds(i % 86400000 + 40000), 'user_' || (i % 400000),
                   CAST(hash(i) AS VARCHAR), '5935064', '12345', [
                     {{'id': '1001', 'name': 'browserId', 'type': 'browser', 'value': 'gc'}},
                     {{'id': '1002', 'name': 'plan', 'type': 'custom', 'value': 'plan_' || (i % 7)}}],
                   '75.111.' || (i % 250) || '.0', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0',
                   'https://www.example.com/page/' || (i % 1000), 'other',
                   ['purchase', 'add_to_cart', 'detail_page_view'][1 + i % 3], i % 20000, (i % 100) / 3.0,
                   i % 5, MAP {{'source': 'bench', 'tier': CAST(i % 3 AS VARCHAR)}}, '112', 'js', '0.188.0',
                   DATE '{DAY}', DATE '{DAY}'
            FROM range({rows}) t(i)"""
        )


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.rss", *args], check=True, capture_output=True, text=True
    )
    figures = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return {k: float(v) for k, v in figures.items()}


def bench_mixpanel(work: Path, mb: int = 2000) -> dict:
    path = work / "mixpanel.duckdb"
    rows = mb * 1024 * 1024 // BYTES_PER_EVENT
    _fill(path, rows)
    server = subprocess.Popen(
        [sys.executable, "-m", "optimizely_assets_tests.mixpanel_standin", "4242", "sa.bench", "s3cret"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        feed = _child("bench.mixpanel_child", "feed", str(path), DAY.isoformat(), url)
        whole = _child("bench.mixpanel_child", "whole", str(path), DAY.isoformat(), url)
    finally:
        server.kill()
    return {"target_mb": mb, "rows": rows, "feed": feed, "whole_day_read": whole}


def report(r: dict) -> None:
    f, w = r["feed"], r["whole_day_read"]
    print(
        f"mixpanel: one events day, {int(f['rows']):,} rows, {f['json_mb']:.0f} MB of event JSON, to the stand-in"
    )
    print(
        f"  feed: {f['seconds']:.1f} s, {f['rows'] / f['seconds']:,.0f} events/s, {f['json_mb'] / f['seconds']:.1f} MB/s, "
        f"{int(f['requests'])} requests; peak RSS {f['peak_rss_mb']:.0f} MB (target <= 250)"
    )
    print(f"  baseline, the day read whole before sending: peak RSS {w['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = bench_mixpanel(Path(tmp), int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
        report(result)
        print(f"  ({time.perf_counter() - started:.0f} s in all)")
