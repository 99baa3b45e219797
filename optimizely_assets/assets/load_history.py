"""The ``load_history`` row of the day a step loads (warehouse/history.py has the table)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import AssetExecutionContext, AssetRecordsFilter

from optimizely_assets.assets.keys import SOURCE_FILES, key
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.history import LoadHistoryRow, trigger_of


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
