"""The one `@asset` header every export asset shares, and what the deployment says about it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dagster import AssetCheckSpec, AssetOut, BackfillPolicy, Nothing, multi_asset

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
    metadata: dict | None = None,
    check_specs: list[AssetCheckSpec] | None = None,
    stores_value: bool = True,
    **kwargs,
):
    """One stage of one export type, key ``<type>/<stage>``, daily, one day per run, with its checks.

    A multi-asset of one asset: its checks are evaluated in the asset's own step, from what the
    step already holds (no step of their own to start, no second read of the day), and a blocking
    one that fails still stops everything downstream. Subsettable, so a check can run alone: the
    UI's "Execute" on a check and the ``checks`` CLI evaluate it without materializing the asset.
    Grouped by export type: each group in the lineage is one chain, source to canonical.
    """
    return multi_asset(
        name=f"{export_type.value}__{stage}",
        outs={
            stage: AssetOut(
                key=[export_type.value, stage],
                description=description,
                metadata=metadata,
                group_name=export_type.value,
                kinds=deployment.kinds(stage),
                owners=list(deployment.owners),
                # Tables are written by the warehouse, not handed to an IO manager.
                **({} if stores_value else {"dagster_type": Nothing}),
                is_required=False,
            )
        },
        check_specs=check_specs,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        **kwargs,
    )
