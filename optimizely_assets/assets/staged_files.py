from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output

from optimizely_assets.assets.factory import Deployment, export_asset, partition_day
from optimizely_assets.assets.keys import SOURCE_FILES, STAGED_FILES, key
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.loading.staging_copy import StagedDay, stage_day
from optimizely_assets.privacy.scrub import matcher
from optimizely_assets.privacy.tables import PrivacySettings, PrivacyTables
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.warehouse import Warehouse


def build_staged_files_asset(export_type: ExportType, partitions_def, deployment: Deployment):
    @export_asset(
        export_type,
        STAGED_FILES,
        partitions_def,
        deployment,
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
        warehouse: Warehouse,
        privacy: PrivacySettings,
    ) -> Output[StagedDay]:
        assert manifest.day == partition_day(context.partition_key)
        # Forgotten visitors never reach a staged file again (privacy/): copies are scrubbed.
        hashes = (
            set()
            if privacy.none_forgotten()
            else PrivacyTables(warehouse.for_context(context)).forgotten_hashes()
        )
        staged = stage_day(
            source,
            staging,
            manifest,
            workers=loader.copies_in_flight(source.remote, staging.remote),
            attempts=loader.copy_attempts,
            suppress=matcher(hashes=hashes, salt=privacy.salt()) if hashes else None,
        )
        return Output(
            staged,
            output_name=STAGED_FILES,
            metadata={
                "files": len(staged.files),
                "copied": staged.copied,
                "hard_linked": staged.linked,
                "skipped_identical": staged.skipped,
                "deleted_stale": staged.deleted,
                "suppressed_rows": staged.suppressed.rows,
                "bytes_copied": MetadataValue.int(staged.bytes_copied),
                "dagster/uri": MetadataValue.path(staged.day_uri),
            },
        )

    return _staged_files
