"""Asset keys, so stages refer to each other without importing each other's builders."""

from __future__ import annotations

import datetime as dt

from dagster import AssetKey, BackfillPolicy

from optimizely_assets.layout import ExportType

SOURCE_FILES = "source_files"
STAGED_FILES = "staged_files"
RAW_TABLE = "raw_table"
CANONICAL = "canonical"

# A backfill runs one day per run. Each day is its own load job and MERGE anyway, its checks
# are evaluated per partition, and a failed day fails (and retries) alone; dagster.yaml's
# run queue runs several days at once.
ONE_DAY_PER_RUN = BackfillPolicy.multi_run(max_partitions_per_run=1)


def key(export_type: ExportType, stage: str) -> AssetKey:
    return AssetKey([export_type.value, stage])


def canonical_pool(export_type: ExportType) -> str:
    """One pool per canonical table, limited to 1: insert-only MERGEs must never overlap."""
    return f"optimizely_canonical_{export_type.value}"


def partition_day(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)


def md_table(header: tuple[str, str], rows: dict | list[tuple[object, object]]) -> str:
    items = rows.items() if isinstance(rows, dict) else rows
    lines = [f"| {header[0]} | {header[1]} |", "|---|---:|"]
    for k, v in items:
        name = "NULL" if k is None else f"`{k}`"
        lines.append(f"| {name} | {v:,} |" if isinstance(v, int) else f"| {name} | {v} |")
    return "\n".join(lines)


def sorted_keys(counts: dict) -> dict:
    """Counts keyed by experiment_id / event_name with NULL (None) last, for display."""
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))
