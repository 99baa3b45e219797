"""Metadata the assets show: Dagster's standard keys, column schemas, small Markdown tables."""

from __future__ import annotations

from dagster import TableColumn, TableSchema

from optimizely_assets.assets.factory import Deployment
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS, bigquery_field, duckdb_type
from optimizely_assets.warehouse.base import EVENT_DATE, EXPORT_DATE, table_names
from optimizely_assets.warehouse.uuid_key import UUID_KEY


def _type(field, warehouse: str) -> str:
    if warehouse == "duckdb":
        return duckdb_type(field.type)
    api = bigquery_field(field)
    base = "RECORD" if api["type"] == "RECORD" else api["type"]
    return f"ARRAY<{base}>" if api["mode"] == "REPEATED" else base


def column_schema(export_type: ExportType, which: str, deployment: Deployment) -> TableSchema:
    """The table's columns as the warehouse types them, from ``e3.schemas`` (the one source)."""
    cols = [TableColumn(f.name, _type(f, deployment.warehouse)) for f in SCHEMAS[export_type]]
    if which == "canonical":
        cols += [
            TableColumn(
                EXPORT_DATE, "DATE", description="export day that first delivered the uuid (partition)"
            ),
            TableColumn(EVENT_DATE, "DATE", description="DATE(COALESCE(timestamp, process_timestamp)), UTC"),
            TableColumn(
                UUID_KEY,
                "BLOB" if deployment.warehouse == "duckdb" else "BYTES",
                description="uuid in 17 exact bytes, what the dedup probes compare (warehouse/uuid_key.py)",
            ),
        ]
    elif deployment.warehouse == "duckdb":
        cols.append(TableColumn(EXPORT_DATE, "DATE", description="export day (one load replaces it)"))
    return TableSchema(columns=cols)


def table_definition_metadata(export_type: ExportType, which: str, deployment: Deployment) -> dict:
    """Declared on the asset definition, so the catalog shows the table before any run."""
    return {
        "dagster/column_schema": column_schema(export_type, which, deployment),
        "dagster/table_name": deployment.table_name(getattr(table_names(export_type), which)),
    }


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
