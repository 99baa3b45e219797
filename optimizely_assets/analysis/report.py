"""`optimizely-assets results` and `report`: the experiment tables in the terminal, and as a page."""

from __future__ import annotations

from pathlib import Path

from optimizely_assets.analysis.srm import srm_tests
from optimizely_assets.settings import Settings


class NoResultsError(RuntimeError):
    pass


def _analysis(settings: Settings):
    from optimizely_assets.definitions import build_resources
    from optimizely_assets.warehouse.analysis import ExperimentAnalysis

    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise NoResultsError(
            f"nothing is loaded under {settings.local_dir}: run `optimizely-assets demo` first"
        )
    analysis = ExperimentAnalysis(build_resources(settings)["warehouse"])
    analysis.ensure_tables()
    return analysis


def _none_for(experiment_id: str | None) -> NoResultsError:
    which = f"experiment {experiment_id}" if experiment_id else "any experiment"
    return NoResultsError(
        f"no results for {which} in the warehouse; materialize analysis/experiment_results "
        "(the daily job does) or check the id"
    )


def results_text(settings: Settings, experiment_id: str | None = None, inference: bool = True) -> str:
    from optimizely_assets.analysis.tables import metrics_text, results_markdown

    analysis = _analysis(settings)
    rows = analysis.results(experiment_id)
    if not rows:
        raise _none_for(experiment_id)
    lines = [results_markdown(rows), ""]
    names = {r.experiment_id: r.experiment_name for r in rows}
    variation_names = {r.variation_id: r.variation_name for r in rows}
    metrics = analysis.metrics(experiment_id) if inference else []
    for e in sorted({m.experiment_id for m in metrics if m.experiment_id}):
        mine = [m for m in metrics if m.experiment_id == e]
        base = mine[0].baseline_variation_id or ""
        lines += [
            f"{names.get(e, e)} ({e}), against {variation_names.get(base, base)} ({base}):",
            metrics_text(mine, variation_names),
            "",
        ]
    for test in srm_tests(rows, analysis.allocations()):
        verdict = "SAMPLE RATIO MISMATCH" if test.mismatch else "no sample ratio mismatch"
        lines.append(f"{names[test.experiment_id]} ({test.experiment_id}): {verdict} ({test.verdict()})")
    return "\n".join(lines)


def write_report(settings: Settings, experiment_id: str, out: Path) -> Path:
    """One self-contained HTML page (analysis/html_report.py) for one experiment."""
    from optimizely_assets.analysis.html_report import render_report
    from optimizely_assets.analysis.metrics import cumulative

    analysis = _analysis(settings)
    rows = analysis.results(experiment_id)
    metrics = analysis.metrics(experiment_id)
    if not rows or not metrics:
        raise _none_for(experiment_id)
    baselines = {experiment_id: metrics[0].baseline_variation_id or ""}
    daily = analysis.daily_metric_sums(experiment_id, settings.exclude_multiple_variation_units)
    page = render_report(
        rows[0].experiment_name,
        experiment_id,
        metrics,
        cumulative(daily, baselines),
        {r.variation_id: r.variation_name for r in rows},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def headlines(settings: Settings, experiment_ids: list[str], event: str = "purchase") -> str:
    """One line per experiment's variation on ``event`` conversion, and what CUPED did to its count."""
    from optimizely_assets.analysis.tables import p_text, pct

    analysis = _analysis(settings)
    lines = []
    for experiment_id in experiment_ids:
        rows = analysis.results(experiment_id)
        names = {r.variation_id: r.variation_name for r in rows}
        metrics = {
            (m.variation_id, m.metric): m for m in analysis.metrics(experiment_id) if m.event_name == event
        }
        for (variation, metric), r in sorted(metrics.items()):
            if metric != "conversion" or r.lift is None or r.ci_low is None:
                continue
            verdict = "significant after FDR" if (r.fdr_p_value or 1.0) < 0.05 else "not significant"
            base = r.baseline_variation_id or ""
            lines.append(
                f"{rows[0].experiment_name}, {names.get(variation, variation)} vs {names.get(base, base)}, "
                f"{event} conversion: {pct(r.lift)} (95% CI {pct(r.ci_low)} .. {pct(r.ci_high)}), "
                f"p {p_text(r.p_value)}, sequential p {p_text(r.seq_p_value)}: {verdict}"
            )
            count = metrics.get((variation, "count"))
            if count and count.ci_low is not None and count.cuped_ci_low is not None:
                plain, adjusted = count.ci_high - count.ci_low, count.cuped_ci_high - count.cuped_ci_low
                lines.append(
                    f"  {event} count with CUPED (the 7 days before exposure): 95% CI "
                    f"{pct(count.cuped_ci_low)} .. {pct(count.cuped_ci_high)} instead of "
                    f"{pct(count.ci_low)} .. {pct(count.ci_high)}, {1 - adjusted / plain:.0%} narrower"
                )
    return "\n".join(lines)
