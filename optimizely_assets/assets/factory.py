"""The one `@asset` header every export asset shares, and what the deployment says about it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dagster import BackfillPolicy, asset

from optimizely_assets.e3.layout import ExportType

# A backfill runs one day per run. Each day is its own load job and MERGE anyway, its checks
# are evaluated per partition, and a failed day fails (and retries) alone; dagster.yaml's
# run queue runs several days at once.
ONE_DAY_PER_RUN = BackfillPolicy.multi_run(max_partitions_per_run=1)


@dataclass(frozen=True)
class Deployment:
    """What the assets run on, as the UI should show it: chosen once, by ``settings``."""

    source: str = "filesystem"  # "s3" | "filesystem"
    staging: str = "filesystem"  # "gcs" | "filesystem"
    warehouse: str = "duckdb"  # "bigquery" | "duckdb"
    table_prefix: str = "warehouse.main"  # `project.dataset` on BigQuery
    owners: tuple[str, ...] = ("team:data-engineering",)

    def kinds(self, stage: str) -> set[str]:
        return {
            "source_files": {self.source, "parquet"},
            "staged_files": {self.staging, "parquet"},
        }.get(stage, {self.warehouse, "table"})

    def table_name(self, table: str) -> str:
        return f"{self.table_prefix}.{table}"


def partition_day(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)


def export_asset(
    export_type: ExportType,
    stage: str,
    partitions_def,
    deployment: Deployment,
    *,
    description: str,
    **kwargs,
):
    """``@asset`` for one stage of one export type: key ``<type>/<stage>``, daily, one day per run.

    Grouped by export type: each group in the lineage is one chain, source to canonical.
    """
    return asset(
        name=stage,
        key_prefix=[export_type.value],
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name=export_type.value,
        kinds=deployment.kinds(stage),
        owners=list(deployment.owners),
        description=description,
        **kwargs,
    )
