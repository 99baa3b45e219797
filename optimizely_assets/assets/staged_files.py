from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from optimizely_assets.assets.keys import ONE_DAY_PER_RUN, SOURCE_FILES, STAGED_FILES, key, partition_day
from optimizely_assets.layout import ExportType
from optimizely_assets.manifest import DayManifest
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.staging_copy import StagedDay, stage_day


def build_staged_files_asset(export_type: ExportType, partitions_def):
    @asset(
        name=STAGED_FILES,
        key_prefix=[export_type.value],
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name="staging",
        kinds={"gcs", "parquet"},
        ins={"manifest": AssetIn(key=key(export_type, SOURCE_FILES))},
        description=(
            f"The day's {export_type.value} files copied to staging in the same hive layout: streamed, "
            "in parallel, skipping files already staged from the same source ETag, removing stale ones."
        ),
    )
    def _staged_files(
        context: AssetExecutionContext,
        manifest: DayManifest,
        source: ExportSource,
        staging: Staging,
        loader: LoaderConfig,
    ) -> Output[StagedDay]:
        assert manifest.day == partition_day(context.partition_key)
        staged = stage_day(
            source, staging, manifest, workers=loader.copy_workers, attempts=loader.copy_attempts
        )
        return Output(
            staged,
            metadata={
                "files": len(staged.files),
                "copied": staged.copied,
                "skipped_identical": staged.skipped,
                "deleted_stale": staged.deleted,
                "bytes_copied": MetadataValue.int(staged.bytes_copied),
                "staging_prefix": MetadataValue.path(staged.day_uri),
            },
        )

    return _staged_files
