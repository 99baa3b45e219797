from dagster import AssetExecutionContext, AssetIn, MaterializeResult, MetadataValue, asset

from optimizely_assets.assets.keys import (
    ONE_DAY_PER_RUN,
    RAW_TABLE,
    STAGED_FILES,
    key,
    md_table,
    partition_day,
)
from optimizely_assets.layout import ExportType
from optimizely_assets.resources.warehouse import Warehouse
from optimizely_assets.staging_copy import StagedDay


def build_raw_table_asset(export_type: ExportType, partitions_def):
    @asset(
        name=RAW_TABLE,
        key_prefix=[export_type.value],
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name="warehouse_raw",
        kinds={"bigquery", "table"},
        pool="warehouse",
        ins={"staged": AssetIn(key=key(export_type, STAGED_FILES))},
        description=(
            f"`{export_type.value}_raw`: the day's rows exactly as exported, with the path's date and "
            f"{export_type.partition_column} as columns. One load replaces the whole day partition."
        ),
    )
    def _raw_table(
        context: AssetExecutionContext, staged: StagedDay, warehouse: Warehouse
    ) -> MaterializeResult:
        day = partition_day(context.partition_key)
        warehouse.ensure_tables(export_type)
        rows = warehouse.load_raw_day(export_type, day, list(staged.uris), staged.type_root_uri)
        summary = warehouse.raw_day(export_type, day)
        return MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "files_loaded": len(staged.uris),
                f"{export_type.partition_column}s": len(summary.partition_rows),
                **warehouse.describe(export_type),
                f"rows_by_{export_type.partition_column}": MetadataValue.md(
                    md_table(
                        (export_type.partition_column, "rows"), dict(sorted(summary.partition_rows.items()))
                    )
                ),
            }
        )

    return _raw_table
