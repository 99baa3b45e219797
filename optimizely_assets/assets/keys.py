"""Asset keys and pools, so stages and checks refer to each other without importing builders."""

from __future__ import annotations

from dagster import AssetKey

from optimizely_assets.e3.layout import ExportType

SOURCE_FILES = "source_files"
STAGED_FILES = "staged_files"
RAW_TABLE = "raw_table"
CANONICAL = "canonical"


def key(export_type: ExportType, stage: str) -> AssetKey:
    return AssetKey([export_type.value, stage])


def canonical_pool(export_type: ExportType) -> str:
    """One pool per canonical table, limited to 1: insert-only MERGEs must never overlap."""
    return f"optimizely_canonical_{export_type.value}"


# The experiment analysis tables (assets/analysis.py, experiments.py, metrics.py).
UNITS_KEY = AssetKey(["analysis", "experiment_units"])
EVENTS_KEY = AssetKey(["analysis", "experiment_events"])
NAMES_KEY = AssetKey(["analysis", "experiments"])
RESULTS_KEY = AssetKey(["analysis", "experiment_results"])
METRICS_KEY = AssetKey(["analysis", "experiment_metrics"])

MARKER_CHECK = "success_marker_delivered"  # on source_files: the day's _SUCCESS was delivered
