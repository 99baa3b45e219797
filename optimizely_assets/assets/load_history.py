"""The ``load_history`` row of the day a step loads (warehouse/history.py has the table)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import (
    AssetExecutionContext,
    AssetRecordsFilter,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    MetadataValue,
    ObserveResult,
    observable_source_asset,
)

from optimizely_assets.assets.keys import SOURCE_FILES, key
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.history import TABLE, LoadHistoryRow, create_table, trigger_of


def _source_stats(context: AssetExecutionContext, export_type: ExportType) -> tuple[int | None, ...]:
    """Files, bytes and footer rows of the day, from its latest source_files materialization (read
    from the instance, not as an input: a step run alone, as in a refused run, loads nothing)."""
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=key(export_type, SOURCE_FILES), asset_partitions=[context.partition_key]
        ),
        limit=1,
    )
    if not result.records:
        return None, None, None
    meta = result.records[0].asset_materialization.metadata
    return tuple(meta[k].value if k in meta else None for k in ("files", "bytes", "dagster/row_count"))


def history_row(context: AssetExecutionContext, export_type: ExportType, day: dt.date) -> LoadHistoryRow:
    files, size, rows = _source_stats(context, export_type)
    record = context.instance.get_run_record_by_id(context.run_id)
    started = record.start_time if record and record.start_time else None
    return LoadHistoryRow(
        run_id=context.run_id,
        run_trigger=trigger_of(context.run.tags),
        export_type=export_type.value,
        export_date=day,
        source_files=files,
        source_bytes=size,
        footer_rows=rows,
        started_at=dt.datetime.fromtimestamp(started, dt.timezone.utc)
        if started
        else dt.datetime.now(dt.timezone.utc),
    )


@contextmanager
def failure_recorded(warehouse: Warehouse, row: LoadHistoryRow) -> Iterator[None]:
    """On an error, append the day's ``failed`` row (after the load's own rollback), then re-raise."""
    try:
        yield
    except Exception as exc:
        try:
            warehouse.record_history(row.failed(exc))
        except Exception as history_exc:  # noqa: BLE001 - the load's error is the one to report
            exc.add_note(f"(load_history not written: {type(history_exc).__name__}: {history_exc})")
        raise


SHOWN = ("export_date", "export_type", "run_trigger", "rows_loaded", "uuids_inserted", "outcome", "ended_at")


def build_load_history_asset():
    """``load_history`` in the UI: an observable source asset, its rows and latest loads as metadata."""

    @observable_source_asset(
        name=TABLE,
        group_name="operations",
        # Dagster's with_source_code_references skips observable source assets: "view code" by hand.
        metadata={
            "dagster/code_references": CodeReferencesMetadataValue(
                code_references=[LocalFileCodeReference(file_path=__file__)]
            )
        },
        description="One row per load of a day and type, written by the loads themselves (success in "
        "the MERGE's transaction on DuckDB, right after the MERGE job on BigQuery; a failed day's row "
        "after its rollback). Observe it to see the latest loads here.",
    )
    def load_history(warehouse: Warehouse) -> ObserveResult:
        from optimizely_assets.warehouse.analysis import ExperimentAnalysis

        table = warehouse.ref(TABLE) if warehouse.kind == "bigquery" else TABLE  # type: ignore[attr-defined]
        reader = ExperimentAnalysis(warehouse)
        reader.execute([create_table(table, warehouse.kind == "bigquery")])
        ((count,),) = reader.query(f"SELECT COUNT(*) FROM {table}")
        latest = reader.query(f"SELECT {', '.join(SHOWN)} FROM {table} ORDER BY ended_at DESC LIMIT 20")
        lines = ["| " + " | ".join(SHOWN) + " |", "|" + "---|" * len(SHOWN)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in latest]
        return ObserveResult(
            metadata={
                "dagster/row_count": int(count),
                "dagster/table_name": table.strip("`"),
                "latest_loads": MetadataValue.md("\n".join(lines)),
            }
        )

    return load_history
