"""One experiment's results as a self-contained HTML page: inline SVG, no script, no network.

Per metric, a forest plot: each variation's lift against the baseline per event, its 95% interval
(thick) inside its sequential interval (thin, valid at every look), filled when significant after
FDR. Per metric and event, the cumulative lift by the units' exposure day with its sequential
interval as a band: what an analyst watches to see an effect settle.
"""

from __future__ import annotations

import math
from html import escape

from optimizely_assets.analysis.metrics import CumulativePoint, MetricRow
from optimizely_assets.analysis.tables import p_text, pct

COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989")
METRIC_TITLES = {
    "conversion": "Conversion (share of units with the event)",
    "count": "Events per unit",
    "revenue": "Revenue per unit (cents)",
}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1040px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:16px 0 4px}
.sub{color:#59636e}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #d1d9e0;text-align:right}td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}.axis{stroke:#818b98}.zero{stroke:#59636e;stroke-dasharray:4 3}
.grid{stroke:#eef1f4}.small{display:grid;grid-template-columns:repeat(3,1fr);gap:6px 18px}.note{fill:#59636e;font-style:italic}
"""


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    raw = max(hi - lo, 1e-9) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def _scale(lo: float, hi: float, x0: float, x1: float, n: int = 5):
    """A linear map from [lo, hi], widened to round ticks, onto [x0, x1]; and the ticks."""
    ticks = _nice_ticks(lo, hi, n)
    lo, hi = ticks[0], ticks[-1]
    return (lambda v: x0 + (v - lo) / (hi - lo) * (x1 - x0)), ticks


def forest_plot(metric: str, rows: list[MetricRow], names: dict[str, str]) -> str:
    shown = [r for r in rows if r.variation_id != r.baseline_variation_id]
    values = [
        v for r in shown for v in (r.seq_ci_low, r.seq_ci_high, r.ci_low, r.ci_high, r.lift) if v is not None
    ]
    width, left, right, row_h, top = 1000, 260, 190, 30, 28
    height = top + row_h * max(1, len(shown)) + 30
    x, ticks = _scale(min([0.0, *values]), max([0.0, *values]), left, width - right)
    out = [
        f'<svg class="forest" data-metric="{escape(metric)}" viewBox="0 0 {width} {height}" '
        'width="100%" role="img">'
    ]
    for t in ticks:
        out.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 8}" y2="{height - 26}"/>')
        out.append(f'<text x="{x(t):.1f}" y="{height - 10}" text-anchor="middle">{t:+.0%}</text>')
    out.append(f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 8}" y2="{height - 26}"/>')
    out.append(f'<text x="{width - right + 8}" y="{top - 12}">lift (95% CI)</text>')
    for i, r in enumerate(shown):
        y = top + row_h * i + row_h / 2
        label = f"{r.event_name} · {names.get(r.variation_id or '', r.variation_id)}"
        out.append(f'<text x="8" y="{y + 4:.1f}">{escape(label)}</text>')
        if r.lift is None or r.ci_low is None:
            out.append(
                f'<text class="note" x="{left}" y="{y + 4:.1f}">{escape(r.note or "no inference")}</text>'
            )
            continue
        significant = r.fdr_p_value is not None and r.fdr_p_value < 0.05
        colour = (COLOURS[1] if r.lift < 0 else COLOURS[2]) if significant else "#59636e"
        if r.seq_ci_low is not None:
            out.append(
                f'<line class="seq" stroke="{colour}" stroke-opacity="0.45" stroke-width="2" '
                f'x1="{x(r.seq_ci_low):.1f}" x2="{x(r.seq_ci_high):.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
            )
        out.append(
            f'<line class="ci" stroke="{colour}" stroke-width="6" stroke-linecap="round" '
            f'x1="{x(r.ci_low):.1f}" x2="{x(r.ci_high):.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        fill = colour if significant else "#ffffff"
        out.append(
            f'<circle class="point" cx="{x(r.lift):.1f}" cy="{y:.1f}" r="5.5" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        text = f"{pct(r.lift)} ({pct(r.ci_low)}, {pct(r.ci_high)})"
        out.append(f'<text x="{width - right + 8}" y="{y + 4:.1f}">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def cumulative_chart(
    metric: str, event: str, series: dict[str, list[CumulativePoint]], names: dict[str, str]
) -> str:
    """A small chart: the lift of the units exposed so far, by exposure day, in its sequential band.
    The scale follows the days with at least a fifth of the units: the first days' bands, from a
    handful of units, would flatten everything else (they are clipped, not dropped)."""
    points = [p for ps in series.values() for p in ps if p.lift is not None]
    if not points:
        return f'<p class="note">{escape(event)}: no day with inference yet.</p>'
    days = sorted({p.day for p in points})
    width, height, left, bottom, top = 330, 180, 48, 24, 22
    most = max(p.units for p in points)
    steady = [p for p in points if p.units >= most / 5] or points
    values = [v for p in steady for v in (p.lift, p.seq_ci_low, p.seq_ci_high) if v is not None]
    y, ticks = _scale(min([0.0, *values]), max([0.0, *values]), height - bottom, top, 4)
    span = max(1, (days[-1] - days[0]).days)

    def x(d) -> float:
        return left + (d - days[0]).days / span * (width - left - 10)

    clip = f"c{abs(hash((metric, event))) % 10**8}"
    out = [
        f'<svg class="cumulative" data-metric="{escape(metric)}" data-event="{escape(event)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img">',
        f'<text x="{left}" y="13" font-weight="600">{escape(event)}</text>',
        f'<clipPath id="{clip}"><rect x="{left}" y="{top}" width="{width - left - 10}" '
        f'height="{height - bottom - top}"/></clipPath>',
    ]
    for t in ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>')
        out.append(f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:+.0%}</text>')
    out.append(f'<line class="zero" x1="{left}" x2="{width - 10}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    for d in (days[0], days[-1]):
        anchor = "start" if d == days[0] else "end"
        out.append(f'<text x="{x(d):.1f}" y="{height - 6}" text-anchor="{anchor}">{d:%b %d}</text>')
    out.append(f'<g clip-path="url(#{clip})">')
    for i, (_, ps) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        band = [p for p in ps if p.seq_ci_low is not None and p.seq_ci_high is not None]
        if band:
            edge = [(x(p.day), y(p.seq_ci_high)) for p in band]
            edge += [(x(p.day), y(p.seq_ci_low)) for p in reversed(band)]
            if len(band) == 1:  # one day: a bar, not a degenerate polygon
                (cx, hi), (_, lo) = edge
                edge = [(cx - 4, hi), (cx + 4, hi), (cx + 4, lo), (cx - 4, lo)]
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in edge)
            out.append(f'<polygon class="band" fill="{colour}" fill-opacity="0.18" points="{pts}"/>')
        line = " ".join(f"{x(p.day):.1f},{y(p.lift):.1f}" for p in ps if p.lift is not None)
        out.append(f'<polyline class="lift" fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
    out.append("</g>")
    if len(series) > 1:
        for i, variation in enumerate(sorted(series)):
            out.append(
                f'<text x="{width - 10}" y="{top + 12 + 14 * i}" text-anchor="end" '
                f'fill="{COLOURS[i % len(COLOURS)]}">{escape(names.get(variation, variation))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def _table(rows: list[MetricRow], names: dict[str, str]) -> str:
    head = "event metric variation units mean lift 95%&nbsp;CI p seq&nbsp;p FDR&nbsp;p".split()
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        name = names.get(r.variation_id or "", r.variation_id or "")
        base = r.variation_id == r.baseline_variation_id
        ci = (
            f"{pct(r.ci_low)} .. {pct(r.ci_high)}" if r.ci_low is not None else ("" if base else r.note or "")
        )
        star = " ★" if r.lift is not None and (r.fdr_p_value or 1) < 0.05 else ""
        cells = [r.event_name, r.metric, name + (" (baseline)" if base else ""), f"{r.units:,}"]
        cells += ["" if r.mean is None else f"{r.mean:.4g}", pct(r.lift) + star, ci]
        cells += [p_text(r.p_value), p_text(r.seq_p_value), p_text(r.fdr_p_value)]
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "\n".join(out) + "</table>"


def render_report(
    experiment_name: str,
    experiment_id: str,
    rows: list[MetricRow],
    cumulative: dict[tuple[str, str, str | None], list[CumulativePoint]],
    names: dict[str, str],
) -> str:
    base = rows[0].baseline_variation_id or ""
    parts = [
        f"<h1>{escape(experiment_name)}</h1>",
        f'<p class="sub">Experiment {escape(experiment_id)}; every variation against '
        f"{escape(names.get(base, base))} ({escape(base)}). Thick: 95% interval; thin: sequential "
        "interval (valid at every look, tau 5000); filled: significant after Benjamini-Hochberg.</p>",
    ]
    for metric, title in METRIC_TITLES.items():
        mine = [r for r in rows if r.metric == metric]
        if not mine:
            continue
        parts += [f"<h2>{escape(title)}</h2>", forest_plot(metric, mine, names)]
        parts.append("<h3>Cumulative lift by exposure day, in its sequential interval</h3>")
        charts = []
        for event in sorted({r.event_name for r in mine}):
            series = {v or "": ps for (e, m, v), ps in cumulative.items() if e == event and m == metric}
            charts.append(cumulative_chart(metric, event, series, names))
        parts.append('<div class="small">' + "\n".join(charts) + "</div>")
    parts += ["<h2>All figures</h2>", _table(rows, names)]
    title = escape(f"{experiment_name} ({experiment_id})")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
