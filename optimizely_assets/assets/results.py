"""``analysis/experiment_results`` and ``analysis/experiment_metrics``, rebuilt by one step.

Results (units, converting units, events, revenue) are a rebuild of the analysis tables; the
metrics are one aggregate query's sufficient statistics (warehouse/metrics_sql.py) turned into lift,
intervals, sequential p-values, CUPED and FDR by arithmetic (analysis/inference.py), written back
as ``experiment_metrics``. One step, so the results' metadata shows the inference beside the rates.
"""

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from optimizely_assets.analysis.metrics import experiment_metrics
from optimizely_assets.analysis.tables import metrics_markdown, results_markdown
from optimizely_assets.assets.analysis import GROUP, rebuild_condition
from optimizely_assets.assets.factory import ONE_DAY_PER_RUN, Deployment
from optimizely_assets.assets.keys import EVENTS_KEY, METRICS_KEY, NAMES_KEY, RESULTS_KEY, UNITS_KEY
from optimizely_assets.assets.metadata import md_table
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis


def rebuild(analysis: ExperimentAnalysis, exclude_multiple: bool) -> tuple[list, list]:
    """Both tables rebuilt from the units and events (also after a forget): (results, metrics)."""
    analysis.rebuild_results(exclude_multiple)
    metrics = experiment_metrics(analysis.metric_sums(exclude_multiple), analysis.baselines())
    analysis.replace_metrics(metrics)
    return analysis.results(), metrics


def build_results_assets(partitions_def, deployment: Deployment, exclude_multiple: bool = False):
    deps = [
        AssetDep(UNITS_KEY, partition_mapping=AllPartitionMapping()),
        AssetDep(EVENTS_KEY, partition_mapping=AllPartitionMapping()),
        NAMES_KEY,  # names, weights and the baselines
    ]
    multiple_note = "; units seen in several variations excluded" if exclude_multiple else ""

    def spec(key, table: str, description: str) -> AssetSpec:
        return AssetSpec(
            key,
            deps=deps,
            description=description,
            kinds={deployment.warehouse, "table"},
            owners=list(deployment.owners),
            automation_condition=rebuild_condition(),
            metadata={"dagster/table_name": deployment.table_name(table)},
        )

    @multi_asset(
        specs=[
            spec(
                RESULTS_KEY,
                "experiment_results",
                f"Per experiment, variation and event name: units (holdback excluded{multiple_note}), "
                "converting units, attributed events, revenue (cents) and conversion rate; every allocated "
                "variation, with 0 units where it has none. Rebuilt from the tables above.",
            ),
            spec(
                METRICS_KEY,
                "experiment_metrics",
                "Per experiment, variation, event name and metric (conversion, count, revenue): units, sum, "
                "sum of squares and mean; against the experiment's baseline the relative lift with its 95% "
                "interval and p (delta method, Welch), the sequential interval and always-valid p "
                "(asymptotic confidence sequence, tau 5000), CUPED's lift and interval (7 days before "
                "exposure) and Benjamini-Hochberg p over the experiment; a note where inference is "
                "impossible. One aggregate query, however many units.",
            ),
        ],
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name=GROUP,
        name="experiment_results_and_metrics",
    )
    def experiment_results(context: AssetExecutionContext, warehouse: Warehouse):
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        results, metrics = rebuild(analysis, exclude_multiple)
        multiple = analysis.multiple_variation_units()
        significant = sum(1 for r in metrics if r.lift is not None and (r.fdr_p_value or 1.0) < 0.05)
        table = metrics_markdown(metrics)
        yield MaterializeResult(
            asset_key=RESULTS_KEY,
            metadata={
                "dagster/row_count": len(results),
                "experiments": len({r.experiment_id for r in results}),
                "results": MetadataValue.md(results_markdown(results)),
                "metrics": MetadataValue.md(table),
                "multiple_variation_units": sum(m for _, m in multiple.values()),
                "multiple_variation_units_per_experiment": MetadataValue.md(
                    md_table(
                        ("experiment", "units / seen in several variations"),
                        [(e, f"{n:,} / {m:,}") for e, (n, m) in multiple.items()],
                    )
                    + (
                        "\n\nExcluded from results."
                        if exclude_multiple
                        else "\n\nKept, at their first exposure."
                    )
                ),
            },
        )
        yield MaterializeResult(
            asset_key=METRICS_KEY,
            metadata={
                "dagster/row_count": len(metrics),
                "significant_after_fdr": significant,
                "metrics": MetadataValue.md(table),
            },
        )

    return experiment_results
