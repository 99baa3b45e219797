"""The results as Markdown tables: the assets' metadata and the terminal show the same ones."""

from __future__ import annotations

from optimizely_assets.analysis.metrics import MetricRow
from optimizely_assets.warehouse.analysis import ResultRow


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
