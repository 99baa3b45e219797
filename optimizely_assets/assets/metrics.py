"""``analysis/experiment_metrics``: lift, intervals, sequential p-values, CUPED and FDR per metric.

One aggregate query returns every experiment's sufficient statistics (warehouse/metrics_sql.py);
the inference is arithmetic on those sums (analysis/inference.py), and the rows, a few per
variation, are written back as the ``experiment_metrics`` table.
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from optimizely_assets.analysis.metrics import MetricRow, experiment_metrics
from optimizely_assets.assets.analysis import GROUP, rebuild_condition
from optimizely_assets.assets.factory import ONE_DAY_PER_RUN, Deployment
from optimizely_assets.assets.keys import METRICS_KEY, NAMES_KEY, RESULTS_KEY
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1%}" if pct else f"{value:.3g}"


def metrics_markdown(rows: list[MetricRow], limit: int = 40) -> str:
    """The non-baseline rows, most significant first: what the results page would show."""
    shown = sorted(
        (r for r in rows if r.variation_id != r.baseline_variation_id),
        key=lambda r: (r.fdr_p_value is None, r.fdr_p_value or 1.0),
    )
    lines = [
        "| experiment | variation vs baseline | event | metric | lift | 95% CI | p | sequential p | FDR p |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for r in shown[:limit]:
        mark = " ★" if r.fdr_p_value is not None and r.fdr_p_value < 0.05 else ""
        ci = f"{_fmt(r.ci_low, True)} .. {_fmt(r.ci_high, True)}" if r.ci_low is not None else (r.note or "–")
        lines.append(
            f"| {r.experiment_id} | {r.variation_id} vs {r.baseline_variation_id} | {r.event_name} | {r.metric} | "
            f"{_fmt(r.lift, True)}{mark} | {ci} | {_fmt(r.p_value)} | {_fmt(r.seq_p_value)} | {_fmt(r.fdr_p_value)} |"
        )
    return "\n".join(lines)


def build_metrics_asset(partitions_def, deployment: Deployment, exclude_multiple: bool = False):
    @asset(
        key=METRICS_KEY,
        deps=[RESULTS_KEY, NAMES_KEY],  # the baselines come from experiments
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name=GROUP,
        kinds={deployment.warehouse, "table"},
        owners=list(deployment.owners),
        automation_condition=rebuild_condition(),
        metadata={"dagster/table_name": deployment.table_name("experiment_metrics")},
        description=(
            "Per experiment, variation, event name and metric (conversion, count, revenue): units, sum, "
            "sum of squares and mean; against the experiment's baseline the relative lift with its 95% "
            "interval and p (delta method, Welch), the sequential interval and always-valid p "
            "(asymptotic confidence sequence, tau 5000), CUPED's lift and interval (7 days before "
            "exposure) and Benjamini-Hochberg p over the experiment; a note where inference is "
            "impossible. Rebuilt from the units and attributed events by one aggregate query."
        ),
    )
    def experiment_metrics_asset(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        rows = experiment_metrics(analysis.metric_sums(exclude_multiple), analysis.baselines())
        analysis.replace_metrics(rows)
        significant = sum(
            1 for r in rows if r.fdr_p_value is not None and r.fdr_p_value < 0.05 and r.lift is not None
        )
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "significant_after_fdr": significant,
                "metrics": MetadataValue.md(metrics_markdown(rows)),
            }
        )

    return experiment_metrics_asset
