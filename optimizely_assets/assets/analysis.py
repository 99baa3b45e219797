"""Experiment analysis downstream of the two canonical tables (README, "Experiment results").

experiment_units (partition D: the units first seen in the decisions exported on D)
-> experiment_events (D: the conversions exported on D, attributed to units of D-window..D)
-> experiments (names and traffic weights) -> experiment_results (rebuilt, with the SRM check).
"""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from optimizely_assets.assets.factory import ONE_DAY_PER_RUN, Deployment, partition_day
from optimizely_assets.assets.keys import CANONICAL, key
from optimizely_assets.concurrency import ensure_merges_serialised
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.resources.experiment_catalog import ExperimentCatalog
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis, ResultRow
from optimizely_assets.warehouse.analysis_sql import Window

GROUP = "experiment_analysis"
UNITS_KEY, EVENTS_KEY = (
    AssetKey(["analysis", "experiment_units"]),
    AssetKey(["analysis", "experiment_events"]),
)
NAMES_KEY, RESULTS_KEY = AssetKey(["analysis", "experiments"]), AssetKey(["analysis", "experiment_results"])
# Units are insert-only, like canonical: two runs inserting the same new pair side by side on
# BigQuery would both insert it. One slot (dagster.yaml's default pool limit).
UNITS_POOL = "optimizely_experiment_units"


def results_markdown(rows: list[ResultRow]) -> str:
    """Per experiment and variation: units, conversion rate per event, revenue per unit."""
    events = sorted({r.event_name for r in rows if r.event_name is not None})
    by_variation: dict[tuple[str, str], dict] = {}
    for r in rows:
        v = by_variation.setdefault(
            (r.experiment_id, r.variation_id),
            {
                "experiment": r.experiment_name,
                "variation": r.variation_name,
                "units": r.units,
                "rates": {},
                "revenue": 0,
            },
        )
        if r.event_name is not None:
            v["rates"][r.event_name] = r.conversion_rate
        v["revenue"] += r.revenue
    head = ["experiment", "variation", "units", *events, "revenue / unit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in by_variation.values():
        rates = [f"{v['rates'][e]:.2%}" if e in v["rates"] else "" for e in events]
        per_unit = v["revenue"] / v["units"] / 100 if v["units"] else 0.0
        lines.append(
            f"| {v['experiment']} | {v['variation']} | {v['units']:,} | "
            + " | ".join([*rates, f"{per_unit:.2f}"])
            + " |"
        )
    return "\n".join(lines)


def build_analysis_assets(partitions_def, deployment: Deployment, window: Window) -> list:
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
            "One row per (experiment_id, visitor_id): its first decision by timestamp (ties: uuid), with "
            "its variation, is_holdback and exposure time. Insert-only: a unit never changes once written."
        ),
        **common,
    )
    def experiment_units(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        day = partition_day(context.partition_key)
        ensure_merges_serialised(
            context.instance, context.run_id, UNITS_POOL, warehouse.merges_serialised_by_backend
        )
        analysis = ExperimentAnalysis(warehouse)
        analysis.ensure_tables()
        inserted = analysis.write_units(day)
        return MaterializeResult(
            metadata={"dagster/row_count": analysis.count("experiment_units", day), "inserted": inserted}
        )

    @asset(
        key=EVENTS_KEY,
        deps=[
            key(ExportType.EVENTS, CANONICAL),
            # The events of day D can be attributed to units exposed up to `window` before them.
            AssetDep(
                UNITS_KEY,
                partition_mapping=TimeWindowPartitionMapping(
                    start_offset=-window.days, end_offset=0, allow_nonexistent_upstream_partitions=True
                ),
            ),
        ],
        metadata={**table_meta("experiment_events"), "attribution_window_hours": window.hours},
        description=(
            f"Conversions exported on the day, attributed to every unit of their visitor exposed at most "
            f"{window.hours} h before them (exposure <= timestamp <= exposure + {window.hours} h); holdback "
            "units excluded. One event can count for several experiments. A re-run replaces the day."
        ),
        **common,
    )
    def experiment_events(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        day = partition_day(context.partition_key)
        analysis = ExperimentAnalysis(warehouse)
        analysis.ensure_tables()
        rows = analysis.write_events(day, window)
        lo, hi = window.unit_days(day)
        return MaterializeResult(
            metadata={"dagster/row_count": rows, "unit_exposure_days_searched": f"{lo} .. {hi}"}
        )

    @asset(
        key=NAMES_KEY,
        deps=[UNITS_KEY],
        metadata=table_meta("experiments"),
        description=(
            "Experiment and variation names and traffic weights, from Optimizely's REST API "
            "(GET /v2/experiments/{id}) with the same token; offline, the synthetic names or the ids."
        ),
        **common,
    )
    def experiments(
        context: AssetExecutionContext, warehouse: Warehouse, catalog: ExperimentCatalog
    ) -> MaterializeResult:
        analysis = ExperimentAnalysis(warehouse)
        analysis.ensure_tables()
        seen: dict[str, list[str]] = {}
        for experiment_id, variation_id in analysis.query(
            f"SELECT DISTINCT experiment_id, variation_id FROM {analysis.names['experiment_units']} "
            "WHERE variation_id IS NOT NULL"
        ):
            seen.setdefault(str(experiment_id), []).append(str(variation_id))
        rows, errors = catalog.lookup(seen)
        for error in errors[:5]:  # names decorate results; their absence must not stop the day
            context.log.warning(f"experiment names: {error}; ids are used instead")
        analysis.replace_experiments(rows)
        sources = sorted({r.source for r in rows})
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "experiments": len(seen),
                "sources": ", ".join(sources),
                "api_errors": len(errors),
            }
        )

    @asset(
        key=RESULTS_KEY,
        deps=[UNITS_KEY, EVENTS_KEY, NAMES_KEY],
        metadata=table_meta("experiment_results"),
        description=(
            "Per experiment, variation and event name: units (holdback excluded), converting units, "
            "attributed events, revenue (cents) and conversion rate. Rebuilt from the two tables above."
        ),
        **common,
    )
    def experiment_results(warehouse: Warehouse) -> MaterializeResult:
        analysis = ExperimentAnalysis(warehouse)
        analysis.ensure_tables()
        analysis.rebuild_results()
        rows = analysis.results()
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "experiments": len({r.experiment_id for r in rows}),
                "results": MetadataValue.md(results_markdown(rows)),
            }
        )

    return [experiment_units, experiment_events, experiments, experiment_results]
