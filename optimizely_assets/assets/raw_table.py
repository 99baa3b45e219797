from dagster import AssetExecutionContext, AssetIn, MaterializeResult, MetadataValue

from optimizely_assets.assets.factory import Deployment, export_asset, partition_day
from optimizely_assets.assets.keys import RAW_TABLE, STAGED_FILES, key
from optimizely_assets.assets.load_history import failure_recorded, history_row
from optimizely_assets.assets.metadata import md_table, sorted_keys, table_definition_metadata
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import StagedDay
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.warehouse import EmptyDayError, Warehouse


def build_raw_table_asset(export_type: ExportType, partitions_def, deployment: Deployment):
    @export_asset(
        export_type,
        RAW_TABLE,
        partitions_def,
        deployment,
        metadata=table_definition_metadata(export_type, "raw", deployment),
        ins={"staged": AssetIn(key=key(export_type, STAGED_FILES))},
        description=(
            f"`{export_type.value}_raw`: the day's rows exactly as exported, one partition per export day. "
            "One load replaces the whole day partition."
        ),
    )
    def _raw_table(
        context: AssetExecutionContext, staged: StagedDay, warehouse: Warehouse, loader: LoaderConfig
    ) -> MaterializeResult:
        day = partition_day(context.partition_key)
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
        key_rows = (
            result.key_rows if result.key_rows is not None else warehouse.raw_day(export_type, day).key_rows
        )
        return MaterializeResult(
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
            }
        )

    return _raw_table
