from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, AssetIn, MaterializeResult

from optimizely_assets.assets.check_specs import check_specs
from optimizely_assets.assets.checks import (
    all_present,
    evaluate_selected,
    matches_raw,
    no_duplicates,
)
from optimizely_assets.assets.factory import Deployment, export_asset, partition_day
from optimizely_assets.assets.keys import CANONICAL, RAW_TABLE, SOURCE_FILES, canonical_pool, key
from optimizely_assets.assets.load_history import failure_recorded, history_row
from optimizely_assets.assets.metadata import table_definition_metadata
from optimizely_assets.concurrency import ensure_merges_serialised
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.privacy.staged import suppression_of
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.warehouse import Warehouse


def build_canonical_asset(export_type: ExportType, partitions_def, deployment: Deployment):
    @export_asset(
        export_type,
        CANONICAL,
        partitions_def,
        deployment,
        metadata=table_definition_metadata(export_type, "canonical", deployment),
        stores_value=False,
        check_specs=check_specs(export_type, CANONICAL, partitions_def),
        pool=canonical_pool(export_type),
        deps=[key(export_type, RAW_TABLE)],
        # The checks compare the day's canonical rows with the source's own keys.
        ins={"manifest": AssetIn(key=key(export_type, SOURCE_FILES))},
        description=(
            f"`{export_type.value}`: unique by event uuid within the dedup horizon, partitioned by export "
            "day. Export day D holds the first copy of each of raw D's uuids that no other export day "
            "within the horizon holds: a re-run deletes what raw D no longer has and rewrites the rest. "
            "MERGEs into this table never overlap (its own pool, limit 1)."
        ),
    )
    def _canonical(
        context: AssetExecutionContext,
        manifest: DayManifest,
        warehouse: Warehouse,
        loader: LoaderConfig,
        source: ExportSource,
        staging: Staging,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        day = partition_day(context.partition_key)
        with warehouse.for_context(
            context
        ).session() as wh:  # the MERGE and the checks on one connection (DuckDB)
            if key(export_type, CANONICAL) in context.selected_asset_keys:
                yield merge(context, day, wh, loader)
            if not context.selected_asset_check_keys:
                return
            # After the MERGE's commit: the checks read what any reader of the table now sees.
            raw, found = wh.canonical_findings(export_type, day, loader.dedup_horizon_days)
        yield from evaluate_selected(
            context,
            {
                f"every_source_{export_type.partition_column}_in_warehouse": lambda: all_present(
                    export_type, day, manifest, raw, found, suppression_of(staging, source.root, manifest)
                ),
                "no_duplicate_uuids": lambda: no_duplicates(export_type, day, found),
                "canonical_day_within_raw_day": lambda: matches_raw(export_type, day, found),
            },
        )

    def merge(
        context: AssetExecutionContext, day, warehouse: Warehouse, loader: LoaderConfig
    ) -> MaterializeResult:
        ensure_merges_serialised(
            context.instance,
            context.run_id,
            canonical_pool(export_type),
            warehouse.merges_serialised_by_backend,
        )
        history = history_row(context, export_type, day)
        with failure_recorded(warehouse, history):
            stats = warehouse.merge_canonical(export_type, day, loader.dedup_horizon_days, history)
        lo, hi = stats.window
        return MaterializeResult(
            asset_key=key(export_type, CANONICAL),
            metadata={
                # rows of the day: the export_date partition holds exactly the uuids this day delivered first
                "dagster/row_count": stats.partition_rows
                if stats.partition_rows is not None
                else warehouse.canonical_day(export_type, day).rows,
                "table_rows_total": stats.table_rows
                if stats.table_rows is not None
                else warehouse.table_rows(export_type, "canonical"),
                "dagster/table_name": warehouse.table_uri(export_type, "canonical"),
                "raw_rows": stats.day_rows,
                "unique_uuids": stats.unique_uuids,
                "duplicates_within_day": stats.day_rows - stats.null_uuid_rows - stats.unique_uuids,
                "already_in_canonical": stats.already_present,
                "inserted": stats.inserted,
                "rewritten": stats.rewritten,
                "removed_not_in_raw": stats.removed,
                "null_uuid_rows_skipped": stats.null_uuid_rows,
                "dedup_window": f"{lo} .. {hi}",
                "added_columns": ", ".join(stats.added_columns) or "none",
                **stats.jobs.metadata(),
            },
        )

    return _canonical
