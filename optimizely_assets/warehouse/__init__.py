"""The warehouse: one module per backend (``duckdb``, ``bigquery``), shared semantics in ``base``."""

from optimizely_assets.warehouse.base import (
    DaySummary,
    EmptyDayError,
    JobStats,
    LoadResult,
    MergeConcurrencyError,
    MergeStats,
    Warehouse,
    dedup_window,
    table_names,
)

__all__ = [
    "DaySummary",
    "EmptyDayError",
    "JobStats",
    "LoadResult",
    "MergeConcurrencyError",
    "MergeStats",
    "Warehouse",
    "dedup_window",
    "table_names",
]
