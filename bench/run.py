"""Benchmarks, each beside its baseline in the same run on the same data.

    python -m bench.run [--quick]

1. End to end against its peers (bench/peers.py): the minimal SQL job doing the same work (the
   limit), dlt (`pip install -e ".[bench]"`), and a naive pandas loader (a floor), interleaved.
   Throughput (bench/throughput.py): the ingest stages alone vs DuckDB `read_parquet`.
   Files per day (bench/files_per_day.py): ~1,000 small files per type vs ~10 larger ones.
   Copy (bench/copy_throughput.py): the S3 -> GCS stream vs a plain byte copy, 1/4/8 workers.
2. Peak RSS of one day made of a single ~2 GB, single-row-group file, vs pandas reading it.
3. Canonical MERGE: a day with 1970/2099 client clocks vs the clean day, and day 365 vs day 1
   (bench/merge.py). BigQuery bytes of a day's MERGE and checks at a full window, this release's
   statements vs the previous release's (bench/bigquery_bytes.py).
4. `_SUCCESS` sensor tick over 3 years of dates on an S3 server, vs HEAD-ing every date.
5. experiment_metrics for 1 M units: one aggregate query, vs a tenth of the units and vs pulling
   one row per unit into pandas (bench/metrics.py).
6. The Mixpanel feed of a 2,000 MB day to the Import API stand-in: peak RSS and events/s, vs the
   day read whole (bench/mixpanel_feed.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from optimizely_assets.demo.synthetic import date_range
from optimizely_assets.e3.layout import ExportType, account_prefix, success_key

RESULTS = Path(__file__).resolve().parent / "results"
START = dt.date(2024, 1, 1)


def bench_sensor(work: Path, years: int = 3) -> dict:
    """Markers for every date of `years` years on moto's S3 server; one tick vs HEAD-every-date."""
    import boto3
    from dagster import DailyPartitionsDefinition, build_sensor_context
    from dagster_aws.s3 import S3Resource
    from moto.server import ThreadedMotoServer

    from optimizely_assets.automation import build_success_sensor
    from optimizely_assets.resources.s3_source import S3ExportSource

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="optimizely-events-data")
        account = "5935064"
        days = date_range(START, 365 * years)
        keys = []
        for d in days:
            for t in ExportType:
                keys.append(success_key(account_prefix(account), t, d))
                keys.append(
                    success_key(account_prefix(account), t, d).replace(
                        "_SUCCESS", f"{t.partition_column}=1/part-00000-x.c000.snappy.parquet"
                    )
                )
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket="optimizely-events-data", Key=k, Body=b"x"), keys))
        source = S3ExportSource(
            s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"), account_id=account
        )
        daily = DailyPartitionsDefinition(
            start_date=START.isoformat(), end_date=(days[-1] + dt.timedelta(days=1)).isoformat()
        )
        sensor = build_success_sensor(None, daily, lookback_days=3, today=lambda: days[-1])
        cursor = None
        ticks = []
        for _ in range(5):
            with build_sensor_context(cursor=cursor, resources={"source": source}) as context:
                t = time.perf_counter()
                result = sensor(context)
                ticks.append(time.perf_counter() - t)
            cursor = result.cursor
        t = time.perf_counter()
        present = sum(
            source.head(success_key(source.root, et, d)) is not None for d in days for et in ExportType
        )
        naive = time.perf_counter() - t
        assert present == 2 * len(days)
        return {
            "dates": len(days),
            "objects": len(keys),
            "tick_first_s": round(ticks[0], 3),
            "tick_median_s": round(statistics.median(ticks[1:]), 3),
            "head_every_date_s": round(naive, 2),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    choices = [
        "peers",
        "files",
        "copy",
        "throughput",
        "memory",
        "merge",
        "bytes",
        "sensor",
        "metrics",
        "mixpanel",
    ]
    parser.add_argument("--only", choices=choices, action="append")
    args = parser.parse_args(argv)
    only = set(args.only or choices)
    work = Path(tempfile.mkdtemp(prefix="optimizely-bench-"))
    results: dict[str, dict] = {}
    try:
        if "peers" in only:
            from bench.peers import bench_peers, report

            results["peers"] = bench_peers(work, rows_per_type=20_000 if args.quick else 200_000)
            report(results["peers"])
        if "files" in only:
            from bench.files_per_day import bench_files_per_day, report

            results["files_per_day"] = bench_files_per_day(
                work, rows_per_type=20_000 if args.quick else 200_000
            )
            report(results["files_per_day"])
        if "copy" in only:
            from bench.copy_throughput import bench_copy, report

            results["copy"] = bench_copy(work, mb=32 if args.quick else 64)
            report(results["copy"])
        if "throughput" in only:
            from bench.throughput import bench_throughput

            results["throughput"] = bench_throughput(work, days=3, rows=50_000 if args.quick else 1_000_000)
            r = results["throughput"]
            print(
                f"throughput: {r['rows']:,} rows, {r['mb']} MB of Parquet in {r['days']} days, into a DuckDB file"
            )
            print(
                f"  (a) limit, read_parquet -> table:          {r['limit_s']:7.2f} s  {r['limit_rows_per_s']:>9,} rows/s"
            )
            print(
                f"  (b) naive, pandas per file -> append:      {r['naive_s']:7.2f} s  {r['naive_rows_per_s']:>9,} rows/s"
            )
            print(
                f"  ingest (list+footers+stage+raw load):      {r['ingest_s']:7.2f} s  {r['ingest_rows_per_s']:>9,} rows/s"
                f"  {r['ingest_mb_per_s']} MB/s  = {r['ingest_vs_limit']}x limit, {r['ingest_vs_naive']}x naive (a floor)"
            )
            print(
                f"  end to end (+ canonical MERGE + checks {r['canonical_s']} s, experiment analysis {r['analysis_s']} s, run overhead): "
                f"{r['pipeline_s']} s  {r['pipeline_rows_per_s']:,} rows/s  {r['pipeline_mb_per_s']} MB/s"
                f"  = {r['pipeline_vs_limit']}x limit, {r['pipeline_vs_naive']}x naive"
            )
        if "memory" in only:
            from bench.memory import bench_memory

            results["memory"] = bench_memory(work, gb=0.2 if args.quick else 2.0)
            r = results["memory"]
            print(f"memory: one {r['file_mb']} MB file, {r['row_groups']} row group, {r['rows']:,} rows")
            print(
                f"  worker (footers + streamed copy to staging): peak RSS {r['worker_peak_rss_mb']} MB in {r['worker_s']} s (target <= 250)"
            )
            print(
                f"  whole day with the embedded DuckDB warehouse in-process: peak RSS "
                f"{r['with_embedded_duckdb_peak_rss_mb']} MB in {r['with_embedded_duckdb_s']} s; "
                f"an empty day {r['pipeline_empty_day_peak_rss_mb']} MB"
            )
            print(f"  baseline pandas.read_parquet of the file: peak RSS {r['pandas_read_peak_rss_mb']} MB")
        if "merge" in only:
            from bench.merge import bench_history
            from bench.merge_outliers import bench_outliers

            rows = 5_000 if args.quick else 50_000
            results["merge_outliers"] = r = bench_outliers(work, rows_per_day=rows)
            c, o = r["clean"], r["outliers"]
            print(
                f"merge, one day of {rows:,} rows on 60 days of history, with 1 row at 1970-01-01 and 1 at 2099-12-31:"
            )
            print(
                f"  clean {c['merge_s']} s, {c['canonical_rows_read']:,} canonical rows read; outliers {o['merge_s']} s, "
                f"{o['canonical_rows_read']:,} rows read; ratio {r['ratio']} (target <= 1.2)"
            )
            print(
                f"  BigQuery canonical partitions in the window: {c['bigquery_partitions_in_window']} and "
                f"{o['bigquery_partitions_in_window']}; the previous timestamp-derived window: "
                f"{c['previous_design_partitions']} and {o['previous_design_partitions']:,} (limit 4,000 per job)"
            )
            results["merge_history"] = r = bench_history(work, rows_per_day=rows)
            print(
                f"one new E3 day of {rows:,} rows, day 365 ({r['canonical_rows_before_last_day']:,} canonical rows "
                f"before it) vs day 1 and day 31; horizon 30 days; storage {r['storage_version']}"
            )
            for name in (
                "day1",
                "day31",
                "day365",
                "day365_compacted",
                "day1_default_storage",
                "day365_default_storage",
            ):
                c = r[name]
                print(
                    f"  {name:<23} {c['day_s']} s = load {c['load_s']} + MERGE {c['merge_s']} + checks "
                    f"{c['checks_s']} + checkpoint {c['checkpoint_s']}; {c['canonical_rows_read']:,} canonical rows read"
                )
            last = r["day365"]
            print(
                f"  the dedup window's probe alone on day 365: {last['probe_cold_s']} s cold (the MERGE's; the "
                f"checks after it reuse it) + {last['probe_warm_s']} s warm (the checks' run alone): day 1 plus "
                f"the MERGE's = {r['window_floor_ratio_vs_day1']}x day 1, the least a day with a full window can "
                f"cost; on the uuid strings (the previous release): {last['string_probe_cold_s']} s + "
                f"{last['string_probe_warm_s']} s"
            )
            print(
                f"  day 365 / day 31 (history, window full on both): {r['ratio_vs_day31']}; "
                f"day 365 / day 1 (empty window on day 1): {r['ratio_vs_day1']}; "
                f"on DuckDB's default storage: {r['default_storage_ratio_vs_day1']}"
            )
            print(
                f"  the same history compacted (optimizely_compact_warehouse): day 365 / day 31 "
                f"{r['compacted_ratio_vs_day31']} (target <= 1.05), day 365 / day 1 {r['compacted_ratio_vs_day1']} "
                "(target <= 1.2)"
            )
        if "bytes" in only:
            from bench.bigquery_bytes import bench_bigquery_bytes, report

            results["bigquery_bytes"] = bench_bigquery_bytes(rows=5_000 if args.quick else 20_000)
            report(results["bigquery_bytes"])
        if "sensor" in only:
            results["sensor"] = bench_sensor(work, years=1 if args.quick else 3)
            r = results["sensor"]
            print(f"sensor: {r['dates']} dates, {r['objects']} objects on moto S3")
            print(
                f"  tick {r['tick_median_s']} s (first {r['tick_first_s']} s; target < 2)   baseline HEAD every date {r['head_every_date_s']} s"
            )
        if "metrics" in only:
            from bench.metrics import bench_metrics, report

            results["metrics"] = bench_metrics(work, units=100_000 if args.quick else 1_000_000)
            report(results["metrics"])
        if "mixpanel" in only:
            from bench.mixpanel_feed import bench_mixpanel, report

            results["mixpanel"] = bench_mixpanel(work, mb=100 if args.quick else 2000)
            report(results["mixpanel"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
