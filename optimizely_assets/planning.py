"""`optimizely-assets plan-backfill`: what a range of days costs before it runs.

From the source listing only (files and bytes per day and type; no footer is read) it estimates
the load jobs per table, the wall time for a number of parallel runs at a measured copy
throughput, the AWS egress and the BigQuery bytes processed, and checks BigQuery's per-table
quotas over any 24 hours (https://cloud.google.com/bigquery/quotas). The estimates' constants are
arguments with the measured defaults below; the exact bytes come from `preflight`'s dry runs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from optimizely_assets.e3.layout import ExportType, day_prefix, is_data_file

# A partitioned table is bound by partition modifications, not by the 1,500 table operations a day of
# a standard table: 5,000 a day for an ingestion-time partitioned table (raw: one per export day and
# load), 30,000 for a column-partitioned one (canonical). https://cloud.google.com/bigquery/quotas#partitioned_tables
PARTITION_MODIFICATIONS_PER_DAY = 5_000  # raw, the binding one
QUOTA_URL = "https://cloud.google.com/bigquery/quotas#partitioned_tables"
URIS_PER_LOAD_JOB = 10_000
PARTITIONS_PER_TABLE = 10_000
QUOTA_HEADROOM = 0.8  # leave a fifth of the quota for retries and re-runs
# An assumption, not a measurement: the stream runs at a plain byte copy's speed
# (bench/copy_throughput.py: 0.98-1.02x with 1-8 workers), so it is your link's S3 -> GCS rate.
DEFAULT_COPY_MB_PER_S = 80.0
# Per run, besides the copy: load job, MERGE, checks and analysis jobs, each queued in BigQuery.
DEFAULT_RUN_OVERHEAD_S = 60.0
# Parquet bytes -> BigQuery logical bytes, and Parquet bytes per row (Optimizely's sample files).
LOGICAL_PER_PARQUET_BYTE = 4.0
PARQUET_BYTES_PER_ROW = 65.0
UUID_BYTES = 38  # a 36-character uuid string, as BigQuery bills it (2 + length)
UUID_KEY_BYTES = 19  # its uuid_key (BYTES: 2 + a tag byte + 16), what the window probes read


@dataclass(frozen=True)
class DayListing:
    export_type: ExportType
    day: dt.date
    files: int
    bytes: int


def list_days(
    source, export_types: Iterable[ExportType], days: list[dt.date], workers: int = 16
) -> list[DayListing]:
    """Files and bytes per (type, day): one listing each, in parallel; no object is read."""

    def one(item: tuple[ExportType, dt.date]) -> DayListing:
        export_type, day = item
        objects = [
            o for o in source.list_objects(day_prefix(source.root, export_type, day)) if is_data_file(o.key)
        ]
        return DayListing(export_type, day, len(objects), sum(o.size for o in objects))

    items = [(t, d) for t in export_types for d in days]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


def _ranges(days: list[dt.date], size: int) -> list[tuple[dt.date, dt.date]]:
    return [(days[i], days[min(i + size, len(days)) - 1]) for i in range(0, len(days), max(size, 1))]


@dataclass(frozen=True)
class Plan:
    days: int
    files: int
    bytes: int
    load_jobs_per_table: dict[str, int]  # table -> load jobs over the range
    run_seconds: float  # the mean run (one day, both types)
    wall_seconds: float
    days_per_24h: float
    egress_bytes: int
    bigquery_bytes_processed: int
    warnings: list[str]
    max_parallel_runs_for_quota: int  # 0: even one run at a time loads too many days in 24 h


def plan(
    listings: list[DayListing],
    parallel_runs: int,
    copy_mb_per_s: float = DEFAULT_COPY_MB_PER_S,
    run_overhead_s: float = DEFAULT_RUN_OVERHEAD_S,
    horizon_days: int = 30,
) -> Plan:
    if parallel_runs < 1:
        raise ValueError(f"parallel runs must be at least 1, got {parallel_runs}")
    days = sorted({x.day for x in listings})
    per_day_bytes = {d: sum(x.bytes for x in listings if x.day == d) for d in days}
    jobs: dict[str, int] = {}
    processed = 0.0
    for x in listings:
        raw = f"{x.export_type.value}_raw"
        # One load job into raw$YYYYMMDD; over 10,000 files, chunks into a per-day scratch table
        # (its own table, its own quota) and one query job into raw: raw still sees one write.
        jobs[raw] = jobs.get(raw, 0) + (1 if x.files else 0)
        rows = x.bytes / PARQUET_BYTES_PER_ROW
        # The MERGE reads the raw day and the window's keys and export dates; the checks the window's once more.
        processed += (
            x.bytes * LOGICAL_PER_PARQUET_BYTE
            + (2 * horizon_days + 1) * rows * (UUID_KEY_BYTES + DATE_BYTES) * 2
        )
    run_seconds = (
        sum(per_day_bytes.values()) / len(days) / (copy_mb_per_s * 1e6) + run_overhead_s if days else 0.0
    )
    waves = math.ceil(len(days) / parallel_runs) if days else 0
    wall = waves * run_seconds
    days_per_24h = parallel_runs * 86_400 / run_seconds if run_seconds else 0.0
    allowed = PARTITION_MODIFICATIONS_PER_DAY * QUOTA_HEADROOM
    busiest = max(jobs.values(), default=0) / max(len(days), 1)  # load jobs per table per export day
    loads_in_24h = min(days_per_24h, len(days)) * busiest
    days_allowed = int(allowed / max(busiest, 1e-9))  # export days per 24 h within the quota
    max_runs = math.floor(days_allowed * run_seconds / 86_400) if run_seconds else parallel_runs
    warnings = []
    if loads_in_24h > allowed:
        pace = (
            f"at most {max_runs} parallel runs (dagster.yaml concurrency.runs.max_concurrent_runs: {max_runs})"
            if max_runs >= 1
            else f"even one run at a time is too fast: launch ranges of at most {days_allowed:,} days, "
            f"24 h apart ({', '.join(f'{a}..{b}' for a, b in _ranges(days, days_allowed)[:4])}, ...)"
        )
        warnings.append(
            f"{parallel_runs} parallel runs load {loads_in_24h:,.0f} days into each raw table in 24 h: past "
            f"{allowed:,.0f} ({QUOTA_HEADROOM:.0%} of BigQuery's {PARTITION_MODIFICATIONS_PER_DAY:,} partition "
            f"modifications per ingestion-time partitioned table per day, {QUOTA_URL}). Pace it: {pace}."
        )
    if len(days) > PARTITIONS_PER_TABLE:
        warnings.append(f"{len(days):,} days: past BigQuery's {PARTITIONS_PER_TABLE:,} partitions per table")
    return Plan(
        days=len(days),
        files=sum(x.files for x in listings),
        bytes=sum(x.bytes for x in listings),
        load_jobs_per_table=jobs,
        run_seconds=run_seconds,
        wall_seconds=wall,
        days_per_24h=days_per_24h,
        egress_bytes=sum(x.bytes for x in listings),
        bigquery_bytes_processed=int(processed),
        warnings=warnings,
        max_parallel_runs_for_quota=max_runs,
    )


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n / 1e3:,.1f} kB"


def _duration(seconds: float) -> str:
    h = seconds / 3600
    return f"{seconds / 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def render(p: Plan, parallel_runs: int, copy_mb_per_s: float) -> str:
    lines = [
        f"days: {p.days:,}   files: {p.files:,}   bytes: {_size(p.bytes)}",
        "load jobs per table over the range: "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(p.load_jobs_per_table.items())),
        f"one run (one day, both types): {_duration(p.run_seconds)} at {copy_mb_per_s:g} MB/s copy per run"
        " (--copy-mb-per-s: your link's S3 -> GCS rate; the stream runs at a plain copy's speed)",
        f"wall time with {parallel_runs} parallel runs: {_duration(p.wall_seconds)}"
        f" ({p.days_per_24h:,.0f} days per 24 h)",
        f"AWS egress (S3 -> GCS): {_size(p.egress_bytes)}",
        f"BigQuery bytes processed (estimate; `preflight` dry-runs a day exactly): "
        f"{_size(p.bigquery_bytes_processed)}",
    ]
    lines += [f"WARNING: {w}" for w in p.warnings] or ["quotas: within BigQuery's per-table limits"]
    return "\n".join(lines)


def plan_backfill(
    settings, days: list[dt.date], parallel_runs: int, copy_mb_per_s: float, overhead_s: float
) -> str:
    from optimizely_assets.definitions import build_resources

    listings = list_days(build_resources(settings)["source"], ExportType, days)
    return render(plan(listings, parallel_runs, copy_mb_per_s, overhead_s), parallel_runs, copy_mb_per_s)


# BigQuery bills the logical bytes of the columns a query references: STRING 2 + its UTF-8 length,
# DATE 8 (https://cloud.google.com/bigquery/pricing#data_type_sizes).
DATE_BYTES = 8
KEY_BYTES = 2 + 20  # an experiment_id / event_name


def price_day(rows: int, parquet_bytes: int, horizon_days: int) -> dict[str, int]:
    """Bytes a day's MERGE and its canonical checks bill once canonical holds the whole window.

    Before a first backfill canonical is empty and a dry run prices the window at 0: this is the
    figure the same day costs later, when each of the 2H+1 export days holds about as many rows."""
    window_rows = (2 * horizon_days + 1) * rows
    raw_day = int(parquet_bytes * LOGICAL_PER_PARQUET_BYTE)
    probe = window_rows * (UUID_KEY_BYTES + DATE_BYTES)  # uuid_key and export_date over the window
    return {
        "merge_canonical": raw_day + probe,
        "canonical checks": probe + rows * (UUID_BYTES + KEY_BYTES) * 2,
    }


def horizon_within(rows: int, parquet_bytes: int, limit: int, horizon_days: int) -> int | None:
    """The largest dedup horizon (days) whose full-window MERGE and checks stay under ``limit``."""
    for h in range(horizon_days, -1, -1):
        if max(price_day(rows, parquet_bytes, h).values()) <= limit:
            return h
    return None
