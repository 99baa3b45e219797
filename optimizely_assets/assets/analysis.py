"""Experiment analysis downstream of the two canonical tables (README, "Experiment results").

experiment_units (partition D: the decisions exported on D, folded into the running first decision
of each pair) -> experiment_events (D: the conversions exported on D, attributed to the units that
can take them) -> experiments (names and traffic weights) -> experiment_results (rebuilt, with the
SRM check). Late rows reach earlier results by declarative automation (``analysis_condition``).
"""

import datetime as dt

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSelection,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from optimizely_assets.assets.experiments import build_experiments_asset
from optimizely_assets.assets.factory import ONE_DAY_PER_RUN, Deployment, partition_day
from optimizely_assets.assets.keys import CANONICAL, EVENTS_KEY, UNITS_KEY, key
from optimizely_assets.assets.metadata import md_table
from optimizely_assets.concurrency import ensure_merges_serialised
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis
from optimizely_assets.warehouse.analysis_sql import Window

GROUP = "experiment_analysis"
# Units are folded by MERGE: two runs inserting the same new pair side by side on BigQuery would
# both insert it. One slot (dagster.yaml's default pool limit).
UNITS_POOL = "optimizely_experiment_units"


def analysis_condition(window: Window, ignore: AssetSelection | None = None) -> AutomationCondition:
    """Eager, over every partition late rows can still change (L + window days back), not only
    the latest: a day whose inputs changed is brought up to date without anyone re-running it.
    ``ignore``: deps whose missing partitions must not hold the asset back (it re-runs when
    they land)."""
    missing = AutomationCondition.any_deps_missing()
    if ignore is not None:
        missing = missing.ignore(ignore)
    return (
        AutomationCondition.in_latest_time_window(dt.timedelta(days=window.lateness_days + window.days + 2))
        & (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
        & ~missing
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("eager within the lateness bound")


def rebuild_condition() -> AutomationCondition:
    """The rebuilt tables: the latest partition re-runs when any partition of its deps updates."""
    return (
        AutomationCondition.in_latest_time_window()
        & (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("rebuild on any update")


def per_experiment(counts: dict[str, int]) -> MetadataValue:
    return MetadataValue.md(
        md_table(("experiment", "rows"), [(e, f"{n:,}") for e, n in sorted(counts.items())])
    )


def build_analysis_assets(
    partitions_def,
    deployment: Deployment,
    window: Window,
    exclude_multiple: bool = False,
    baselines: dict[str, str] | None = None,
) -> list:
    common = dict(
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name=GROUP,
        kinds={deployment.warehouse, "table"},
        owners=list(deployment.owners),
    )

    def table_meta(name: str) -> dict:
        return {"dagster/table_name": deployment.table_name(name)}

    @asset(
        key=UNITS_KEY,
        deps=[key(ExportType.DECISIONS, CANONICAL)],
        pool=UNITS_POOL,
        metadata=table_meta("experiment_units"),
        description=(
            "One row per (experiment_id, visitor_id): its first decision by timestamp (ties: uuid) among "
            f"every loaded decision within the lateness bound ({window.lateness_days} days), with its "
            "variation, is_holdback, exposure time and whether it was seen in several variations. "
            "Partition D folds in the decisions exported on D; any order gives the same table."
        ),
        automation_condition=analysis_condition(window),
        **common,
    )
    def experiment_units(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        day = partition_day(context.partition_key)
        ensure_merges_serialised(
            context.instance, context.run_id, UNITS_POOL, warehouse.merges_serialised_by_backend
        )
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        written = analysis.write_units(day, window)
        late = analysis.late_decisions(day, window)
        if late:
            context.log.warning(
                f"{day}: {sum(late.values()):,} decision(s) beyond the lateness bound make no unit, in "
                + ", ".join(f"{e} ({n:,})" for e, n in sorted(late.items())[:10])
            )
        return MaterializeResult(
            metadata={
                "dagster/row_count": analysis.count("experiment_units", day),
                **written,
                "decisions_beyond_lateness_bound": sum(late.values()),
                **({"beyond_bound_per_experiment": per_experiment(late)} if late else {}),
            }
        )

    @asset(
        key=EVENTS_KEY,
        deps=[
            key(ExportType.EVENTS, CANONICAL),
            # The units the day's events can take are exposed within L + window days before it and a
            # day after, and come from decisions exported up to L days after that: every units
            # partition whose MERGE can change them.
            AssetDep(
                UNITS_KEY,
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=window.decision_days_for_events()[0],
                    end_offset=window.decision_days_for_events()[1],
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
        ],
        metadata={
            **table_meta("experiment_events"),
            "attribution_window_hours": window.hours,
            "lateness_days": window.lateness_days,
        },
        description=(
            f"Conversions exported on the day, attributed to every unit of their visitor exposed at most "
            f"{window.hours} h before them (exposure <= timestamp <= exposure + {window.hours} h); holdback "
            "units excluded. One event can count for several experiments. A re-run replaces the day; it "
            "re-runs by itself when a units day it reads changes."
        ),
        automation_condition=analysis_condition(window, ignore=AssetSelection.assets(UNITS_KEY)),
        pool=UNITS_POOL,
        **common,
    )
    def experiment_events(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        day = partition_day(context.partition_key)
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        rows = analysis.write_events(day, window)
        lo, hi = window.unit_days(day)
        late_total, late = analysis.late_events(day, window)
        if late:
            context.log.warning(
                f"{day}: {sum(late.values()):,} event(s) beyond the lateness bound are not attributed, in "
                + ", ".join(f"{e} ({n:,})" for e, n in sorted(late.items())[:10])
            )
        return MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "unit_exposure_days_searched": f"{lo} .. {hi}",
                "events_beyond_lateness_bound": late_total,
                "unattributed_beyond_bound": sum(late.values()),
                **({"beyond_bound_per_experiment": per_experiment(late)} if late else {}),
            }
        )

    experiments = build_experiments_asset(
        {**common, "automation_condition": rebuild_condition()}, table_meta("experiments"), baselines
    )

    return [experiment_units, experiment_events, experiments]
