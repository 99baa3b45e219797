"""Upkeep of the embedded warehouse: its file compacted, weekly (warehouse/duckdb_compact.py).

A job of one op, not an asset: it changes no table's contents, only how DuckDB lays them out.
On BigQuery there is nothing to do (BigQuery lays out its own storage), and the job is not defined.
"""

from dagster import (
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from optimizely_assets.warehouse import Warehouse

COMPACT_JOB = "optimizely_compact_warehouse"


class CompactConfig(Config):
    # About a week of 50,000-row days of both types (four 16,384-row groups per table and day).
    min_small_row_groups: int = Field(
        default=64, description="Rewrite only once the file holds more row groups of under 61,440 rows."
    )


@op(
    out=Out(Nothing),
    description="Rewrite the DuckDB file in 122,880-row groups once it holds enough smaller ones (each "
    "day is written in 16,384-row groups), so a day's cost does not grow with the history. All or "
    "nothing; daily runs wait for the file meanwhile.",
    tags={"dagster/kind/duckdb": ""},
)
def compact_warehouse(context: OpExecutionContext, config: CompactConfig, warehouse: Warehouse):
    from optimizely_assets.warehouse.duckdb_compact import compact

    result = compact(warehouse, config.min_small_row_groups)  # type: ignore[arg-type]
    context.log.info(
        f"{'rewritten' if result.rewritten else 'left as is'}: {result.row_groups_before:,} row groups "
        f"({result.small_row_groups_before:,} small) -> {result.row_groups_after:,}"
    )
    yield Output(
        None,
        metadata={
            "rewritten": result.rewritten,
            "row_groups_before": result.row_groups_before,
            "small_row_groups_before": result.small_row_groups_before,
            "row_groups_after": result.row_groups_after,
            "bytes_before": MetadataValue.int(result.bytes_before),
            "bytes_after": MetadataValue.int(result.bytes_after),
        },
    )


@job(name=COMPACT_JOB, description="Compact the embedded warehouse's DuckDB file (weekly schedule).")
def compact_job():
    compact_warehouse()


# Sunday 04:00 UTC, after the daily schedule's day has long finished; off by default, as the
# daily schedule and the sensors are: a deployment turns its automation on in one place.
compact_schedule = ScheduleDefinition(
    name="optimizely_compact_schedule",
    job=compact_job,
    cron_schedule="0 4 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
)
