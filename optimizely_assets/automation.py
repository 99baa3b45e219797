"""The `_SUCCESS` sensor and the daily schedule."""

import datetime as dt
from collections.abc import Callable

from dagster import (
    AssetCheckEvaluation,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    sensor,
)

from optimizely_assets.assets.checks import marker_text
from optimizely_assets.assets.keys import CANONICAL, MARKER_CHECK, RAW_TABLE, SOURCE_FILES, STAGED_FILES, key
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.success_watch import (
    days_to_observe,
    dump_cursor,
    load_cursor,
    observe,
    plan_type,
)
from optimizely_assets.resources.source import ExportSource


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def marker_given_up(export_type: ExportType, day: dt.date, bound_days: int) -> AssetCheckEvaluation:
    """What the sensor records for a day it stops waiting for."""
    return AssetCheckEvaluation(
        asset_key=key(export_type, SOURCE_FILES),
        check_name=MARKER_CHECK,
        passed=False,
        partition=day.isoformat(),
        description=marker_text(export_type, day, False, f" within the {bound_days}-day dedup horizon")
        + "; materialize it once Optimizely delivers it",
        metadata={"day": day.isoformat(), "bound_days": bound_days},
    )


def build_success_sensor(
    job,
    partitions_def: DailyPartitionsDefinition,
    lookback_days: int = 3,
    today: Callable[[], dt.date] = utc_today,
    interval_seconds: int = 300,
    max_days_per_tick: int = 14,
    bound_days: int = 30,
):
    @sensor(
        name="optimizely_success_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            f"Starts a day of one export type when its _SUCCESS appears, every day after its high-water "
            f"mark ({max_days_per_tick} at most per tick, so an outage is caught up); re-runs a day whose "
            f"marker or file list changed within the last {lookback_days} days (late files, rewrites). "
            f"A day passed over without _SUCCESS is watched on every tick for {bound_days} days, then "
            f"its {MARKER_CHECK} check fails."
        ),
    )
    def optimizely_success_sensor(context: SensorEvaluationContext, source: ExportSource):
        last = partitions_def.get_last_partition_key()
        if last is None:
            return SkipReason("no daily partition exists yet")
        last_day = min(today(), dt.date.fromisoformat(last))
        first = dt.date.fromisoformat(partitions_def.get_first_partition_key())
        cursors = load_cursor(context.cursor)
        requests, given_up = [], []
        for t in ExportType:
            days = days_to_observe(cursors[t], last_day, first, lookback_days, max_days_per_tick)
            observed = {d: observe(source, t, d) for d in days}
            reqs, cursors[t], skipped, expired = plan_type(
                t, cursors[t], observed, last_day, lookback_days, bound_days
            )
            requests += reqs
            given_up += [marker_given_up(t, d, bound_days) for d in expired]
            for d in skipped:
                context.log.warning(
                    f"type={t.value} date={d}: still no _SUCCESS while later days are complete; later days "
                    f"go ahead and this one is watched on every tick for {bound_days} days."
                )
        cursor = cursors
        runs = [
            RunRequest(
                run_key=r.run_key,
                partition_key=r.day.isoformat(),
                asset_selection=[
                    key(r.export_type, s) for s in (SOURCE_FILES, STAGED_FILES, RAW_TABLE, CANONICAL)
                ],
                tags={"optimizely/export_type": r.export_type.value, "optimizely/trigger": r.reason},
            )
            for r in requests
        ]
        return SensorResult(run_requests=runs, cursor=dump_cursor(cursor), asset_events=given_up)

    return optimizely_success_sensor


def build_daily_schedule(job):
    # 07:00 UTC: Optimizely makes a day available "within one day of receipt"; the sensor
    # catches it earlier when enabled, the schedule is the backstop.
    return build_schedule_from_partitioned_job(
        job, name="optimizely_daily_schedule", hour_of_day=7, default_status=DefaultScheduleStatus.STOPPED
    )


def catch_up(
    defs, instance, cursor=None, evaluation_time=None, job_name: str = "optimizely_daily", rounds: int = 50
):
    """What the automation daemon does, in this process: evaluate the assets' automation
    conditions, run what they request (one run per partition), repeat until nothing is requested.
    Returns the cursor and the (partition, asset) pairs run. Call it once before loading days to
    start the cursor: a first evaluation requests nothing, as the daemon's first tick."""
    from dagster import evaluate_automation_conditions

    from optimizely_assets.instance import atomic_slot_claims

    atomic_slot_claims(instance)  # its runs are in process: the executor that does it is skipped
    job = defs.resolve_job_def(job_name)
    ran: list[tuple[str, str]] = []
    for _ in range(rounds):
        result = evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=cursor, evaluation_time=evaluation_time
        )
        cursor = result.cursor
        by_partition: dict[str, set] = {}
        for asset_key in defs.resolve_asset_graph().materializable_asset_keys:
            for partition in result.get_requested_partitions(asset_key):
                by_partition.setdefault(partition, set()).add(asset_key)
        if not by_partition:
            return cursor, ran
        for partition in sorted(by_partition):
            keys = by_partition[partition]
            job.get_subset(asset_selection=keys).execute_in_process(
                partition_key=partition,
                instance=instance,
                raise_on_error=True,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            ran += [(partition, k.to_user_string()) for k in sorted(keys)]
    raise RuntimeError(f"automation still requested runs after {rounds} rounds")
