from collections.abc import Generator, Iterator

from dagster import AssetCheckResult, AssetExecutionContext, AssetIn, MaterializeResult, MetadataValue

from optimizely_assets.assets.check_specs import check_specs
from optimizely_assets.assets.checks import evaluate_selected, fresh, rows_match
from optimizely_assets.assets.factory import Deployment, export_asset, partition_day
from optimizely_assets.assets.keys import RAW_TABLE, SOURCE_FILES, STAGED_FILES, key
from optimizely_assets.assets.load_history import failure_recorded, history_row
from optimizely_assets.assets.metadata import md_table, sorted_keys, table_definition_metadata
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.loading.staging_copy import StagedDay
from optimizely_assets.privacy.staged import suppression_of
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.warehouse import EmptyDayError, Warehouse
from optimizely_assets.warehouse.base import DaySummary


def build_raw_table_asset(export_type: ExportType, partitions_def, deployment: Deployment):
    @export_asset(
        export_type,
        RAW_TABLE,
        partitions_def,
        deployment,
        metadata=table_definition_metadata(export_type, "raw", deployment),
        stores_value=False,
        check_specs=check_specs(export_type, RAW_TABLE, partitions_def),
        ins={
            "staged": AssetIn(key=key(export_type, STAGED_FILES)),
            "manifest": AssetIn(key=key(export_type, SOURCE_FILES)),
        },
        description=(
            f"`{export_type.value}_raw`: the day's rows exactly as exported, one partition per export day. "
            "One load replaces the whole day partition."
        ),
    )
    def _raw_table(
        context: AssetExecutionContext,
        staged: StagedDay,
        manifest: DayManifest,
        warehouse: Warehouse,
        source: ExportSource,
        staging: Staging,
        loader: LoaderConfig,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        day = partition_day(context.partition_key)
        loaded = None
        if key(export_type, RAW_TABLE) in context.selected_asset_keys:
            loaded = yield from load(context, day, staged, warehouse, loader)
        yield from evaluate_selected(
            context,
            {
                "rows_match_source_footers": lambda: rows_match(
                    export_type,
                    day,
                    manifest,
                    loaded or warehouse.raw_day(export_type, day),
                    suppression_of(staging, source.root, manifest),
                ),
                "fresh_after_success": lambda: fresh(export_type, day, manifest, source, loader),
            },
        )

    def load(
        context: AssetExecutionContext, day, staged: StagedDay, warehouse: Warehouse, loader: LoaderConfig
    ) -> Generator[MaterializeResult, None, DaySummary]:
        """Replace the day's raw partition; returns what the load counted in its own transaction."""
        warehouse = warehouse.for_context(context)  # its jobs carry the run and step (BigQuery)
        if not staged.files and not loader.allow_empty_day:
            warehouse.ensure_tables(export_type)
            held = warehouse.raw_day(export_type, day).rows
            if held:
                raise EmptyDayError(
                    f"type={export_type.value} date={day}: the source now lists no files for a day that "
                    f"holds {held:,} rows in {warehouse.table_uri(export_type, 'raw')}; nothing was "
                    "replaced. If Optimizely really emptied the day, re-run it with the loader's "
                    "allow_empty_day set."
                )
        history = history_row(context, export_type, day)
        with failure_recorded(warehouse, history):
            result = warehouse.load_raw_day(export_type, day, list(staged.files), list(staged.added_fields))
        # What the table holds, counted by the load in its transaction, or else queried.
        summary = (
            DaySummary(result.rows, result.key_rows)
            if result.key_rows is not None
            else warehouse.raw_day(export_type, day)
        )
        key_rows = summary.key_rows
        yield MaterializeResult(
            asset_key=key(export_type, RAW_TABLE),
            metadata={
                "dagster/row_count": result.rows,
                "dagster/table_name": warehouse.table_uri(export_type, "raw"),
                "files_loaded": len(staged.files),
                f"{export_type.key_column}s": len(key_rows),
                "added_columns": ", ".join(result.added_columns) or "none",
                **result.jobs.metadata(),
                f"rows_by_{export_type.key_column}": MetadataValue.md(
                    md_table((export_type.key_column, "rows"), sorted_keys(key_rows))
                ),
            },
        )
        return summary

    return _raw_table
