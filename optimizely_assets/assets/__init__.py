"""Per export type, four daily-partitioned assets, one module per stage:

source_files (S3 manifest) -> staged_files (GCS) -> raw_table (warehouse day partition)
-> canonical (deduplicated by uuid).
"""

from __future__ import annotations

from dagster import AssetsDefinition, DailyPartitionsDefinition

from optimizely_assets.assets.canonical import build_canonical_asset
from optimizely_assets.assets.factory import Deployment
from optimizely_assets.assets.raw_table import build_raw_table_asset
from optimizely_assets.assets.source_files import build_source_files_asset
from optimizely_assets.assets.staged_files import build_staged_files_asset
from optimizely_assets.e3.layout import ExportType


def build_export_assets(
    export_type: ExportType, partitions_def: DailyPartitionsDefinition, deployment: Deployment
) -> list[AssetsDefinition]:
    return [
        build(export_type, partitions_def, deployment)
        for build in (
            build_source_files_asset,
            build_staged_files_asset,
            build_raw_table_asset,
            build_canonical_asset,
        )
    ]
