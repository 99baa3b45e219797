from dagster import AssetExecutionContext, MaterializeResult, asset

from optimizely_assets.assets.keys import CANONICAL, ONE_DAY_PER_RUN, RAW_TABLE, key, partition_day
from optimizely_assets.layout import ExportType
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.warehouse import Warehouse


def build_canonical_asset(export_type: ExportType, partitions_def):
    @asset(
        name=CANONICAL,
        key_prefix=[export_type.value],
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name="canonical",
        kinds={"bigquery", "table"},
        pool="warehouse",
        deps=[key(export_type, RAW_TABLE)],
        description=(
            f"`{export_type.value}`: unique by event uuid. Each day's raw rows are deduplicated and only "
            "uuids not already present are inserted; the target is scanned only around the day's event dates."
        ),
    )
    def _canonical(
        context: AssetExecutionContext, warehouse: Warehouse, loader: LoaderConfig
    ) -> MaterializeResult:
        day = partition_day(context.partition_key)
        warehouse.ensure_tables(export_type)
        stats = warehouse.merge_canonical(export_type, day, loader.dedup_lookback_days)
        return MaterializeResult(
            metadata={
                "raw_rows": stats.day_rows,
                "unique_uuids": stats.unique_uuids,
                "duplicates_within_day": stats.day_rows - stats.null_uuid_rows - stats.unique_uuids,
                "already_in_canonical": stats.already_present,
                "inserted": stats.inserted,
                "null_uuid_rows_skipped": stats.null_uuid_rows,
                "target_event_date_window": " .. ".join(stats.window) if stats.window else "empty day",
                **warehouse.describe(export_type),
            }
        )

    return _canonical
