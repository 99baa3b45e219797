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


def pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def p_text(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def metrics_text(rows: list[MetricRow], variation_names: dict[str, str]) -> str:
    """The terminal's inference table: per event and metric, each variation's mean, lift and 95% CI,
    p, sequential p and FDR p; ``*`` marks what is significant after FDR (BH, 0.05)."""
    head = ("event", "metric", "variation", "units", "mean", "lift", "95% CI", "p", "seq p", "FDR p", "")
    table = [head]
    for r in rows:
        name = variation_names.get(r.variation_id or "", r.variation_id or "(none)")
        if r.variation_id == r.baseline_variation_id:
            name += " (baseline)"
        ci = f"{pct(r.ci_low)} .. {pct(r.ci_high)}" if r.ci_low is not None else ""
        star = "*" if r.lift is not None and r.fdr_p_value is not None and r.fdr_p_value < 0.05 else ""
        star = star or ("" if r.variation_id == r.baseline_variation_id else r.note or "")
        mean = "" if r.mean is None else f"{r.mean:.4g}"
        table.append(
            (r.event_name, r.metric, name, f"{r.units:,}", mean, pct(r.lift), ci, p_text(r.p_value))
            + (p_text(r.seq_p_value), p_text(r.fdr_p_value), star)
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    right = {3, 4, 5, 7, 8, 9}
    lines = [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
    lines.append(
        "* significant after Benjamini-Hochberg over the experiment's variations, events and metrics"
    )
    return "\n".join(lines)
