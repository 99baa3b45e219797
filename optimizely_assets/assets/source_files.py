from collections.abc import Iterator

from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output

from optimizely_assets.assets.check_specs import check_specs
from optimizely_assets.assets.checks import drift, evaluate_selected, marker_check
from optimizely_assets.assets.factory import Deployment, export_asset, partition_day
from optimizely_assets.assets.keys import MARKER_CHECK, SOURCE_FILES, key
from optimizely_assets.assets.metadata import md_table
from optimizely_assets.e3.layout import ExportType, success_key
from optimizely_assets.loading.manifest import DayManifest, build_manifest
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource


def build_source_files_asset(export_type: ExportType, partitions_def, deployment: Deployment):
    @export_asset(
        export_type,
        SOURCE_FILES,
        partitions_def,
        deployment,
        check_specs=check_specs(export_type, SOURCE_FILES, partitions_def),
        description=(
            f"The {export_type.value} export files of one day, listed once the day's _SUCCESS exists: "
            "keys, sizes, ETags and Parquet footer row counts (ranged reads, nothing downloaded)."
        ),
    )
    def _source_files(
        context: AssetExecutionContext, source: ExportSource, loader: LoaderConfig
    ) -> Iterator[Output[DayManifest] | AssetCheckResult]:
        day = partition_day(context.partition_key)
        if key(export_type, SOURCE_FILES) not in context.selected_asset_keys and {
            k.name for k in context.selected_asset_check_keys
        } <= {MARKER_CHECK}:  # the marker check alone (the UI, the CLI): the source now, no listing
            present = source.head(success_key(source.root, export_type, day)) is not None
            yield marker_check(export_type, day, present, loader.require_success)
            return
        manifest = build_manifest(
            source,
            export_type,
            day,
            require_success=loader.require_success,
            allow_missing_columns=loader.allow_missing_columns,
            quarantine_bad_files=loader.bad_files == "quarantine",
            workers=loader.footers_in_flight(source.remote),
        )
        if manifest.ignored:
            context.log.info(
                f"ignored {len(manifest.ignored)} non-Parquet objects under {manifest.source_root_uri}"
            )
        for q in manifest.quarantined:
            context.log.warning(f"quarantined: {q.reason}")
        if manifest.added_columns:
            context.log.warning(
                f"{export_type.value} {day}: files carry columns not in the known schema: "
                f"{', '.join(manifest.added_columns)} (loaded where the warehouse allows field addition)"
            )
        if key(export_type, SOURCE_FILES) in context.selected_asset_keys:
            yield output(manifest)
        # Run alone (the UI, the `checks` CLI), the check lists the day again: it needs only the
        # source, not the instance or the IO manager of the run that loaded it.
        yield from evaluate_selected(
            context,
            {
                MARKER_CHECK: lambda: marker_check(
                    export_type, day, manifest.success_last_modified is not None, loader.require_success
                ),
                "schema_drift": lambda: drift(export_type, manifest),
            },
        )

    def output(manifest: DayManifest) -> Output[DayManifest]:
        by_partition = manifest.rows_by_partition()
        return Output(
            manifest,
            output_name=SOURCE_FILES,
            metadata={
                "dagster/row_count": manifest.rows,
                "files": len(manifest.files),
                "bytes": MetadataValue.int(manifest.bytes),
                f"{export_type.partition_column}s": len(by_partition),
                "dagster/uri": MetadataValue.path(manifest.source_root_uri),
                "success_marker_last_modified": (
                    manifest.success_last_modified.isoformat() if manifest.success_last_modified else "absent"
                ),
                "added_columns": ", ".join(manifest.added_columns) or "none",
                "quarantined_files": len(manifest.quarantined),
                f"rows_by_{export_type.partition_column}": MetadataValue.md(
                    md_table((export_type.partition_column, "rows"), dict(sorted(by_partition.items())))
                ),
            },
        )

    return _source_files
