"""``experiment_metrics`` rows: the warehouse's sums, each variation against its experiment's baseline.

One row per experiment x variation x event name x metric, with the columns analysts query:
sums and mean; fixed-horizon lift, interval and p; the sequential interval and p; CUPED's lift and
interval; Benjamini-Hochberg over the experiment's variations x metrics x events; a note where
inference is impossible. The baseline row carries its own sums and no lift.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass, replace

from optimizely_assets.analysis.inference import Sums, benjamini_hochberg, cuped, fixed_horizon, sequential
from optimizely_assets.warehouse.analysis import MetricSums

PROPORTIONS = {"conversion"}


@dataclass(frozen=True)
class MetricRow:
    experiment_id: str | None
    variation_id: str | None
    baseline_variation_id: str | None
    event_name: str
    metric: str
    units: int
    sum: float
    sum_squares: float
    mean: float | None
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    seq_ci_low: float | None = None
    seq_ci_high: float | None = None
    seq_p_value: float | None = None
    cuped_lift: float | None = None
    cuped_ci_low: float | None = None
    cuped_ci_high: float | None = None
    fdr_p_value: float | None = None
    note: str | None = None


def default_baseline(variations: list[str | None]) -> str | None:
    """With no configured or API-listed first variation: the smallest variation_id."""
    named = sorted(v for v in variations if v is not None)
    return named[0] if named else None


def experiment_metrics(sums: list[MetricSums], baselines: dict[str, str] | None = None) -> list[MetricRow]:
    baselines = baselines or {}
    by_experiment: dict[str | None, list[MetricSums]] = {}
    for s in sums:
        by_experiment.setdefault(s.experiment_id, []).append(s)
    out: list[MetricRow] = []
    for experiment_id, rows in by_experiment.items():
        variations = sorted({r.variation_id for r in rows}, key=lambda v: (v is None, v or ""))
        base = baselines.get(experiment_id or "") or default_baseline(variations)
        reference = {(r.event_name, r.metric): r.sums for r in rows if r.variation_id == base}
        built = []
        for r in rows:
            s = r.sums
            mean = s.mean if s.n else None
            row = MetricRow(
                r.experiment_id, r.variation_id, base, r.event_name, r.metric, s.n, s.sum, s.sum_squares, mean
            )
            a = reference.get((r.event_name, r.metric))
            if r.variation_id != base:
                if a is None:
                    row = replace(row, note=f"the baseline {base} has no units for this event")
                else:
                    proportion = r.metric in PROPORTIONS
                    fixed, seq, adj = (
                        fixed_horizon(a, s, proportion),
                        sequential(a, s, proportion),
                        cuped(a, s, proportion),
                    )
                    row = replace(
                        row,
                        lift=fixed.lift,
                        ci_low=fixed.ci_low,
                        ci_high=fixed.ci_high,
                        p_value=fixed.p_value,
                        seq_ci_low=seq.ci_low,
                        seq_ci_high=seq.ci_high,
                        seq_p_value=seq.p_value,
                        cuped_lift=adj.lift,
                        cuped_ci_low=adj.ci_low,
                        cuped_ci_high=adj.ci_high,
                        note=fixed.note or adj.note,
                    )
            built.append(row)
        adjusted = benjamini_hochberg([r.p_value for r in built])
        out += [replace(r, fdr_p_value=p) for r, p in zip(built, adjusted, strict=True)]
    return out


@dataclass(frozen=True)
class CumulativePoint:
    day: dt.date
    units: int
    lift: float | None
    seq_ci_low: float | None
    seq_ci_high: float | None


def cumulative(
    daily: dict[dt.date, list[MetricSums]], baselines: dict[str, str] | None = None
) -> dict[tuple[str, str, str | None], list[CumulativePoint]]:
    """(event, metric, variation) -> the lift and sequential interval of the units exposed up to
    each exposure day: the sums add, so each day is the same arithmetic on running sums."""
    running: dict[tuple, Sums] = {}
    out: dict[tuple[str, str, str | None], list[CumulativePoint]] = {}
    for day, sums in sorted(daily.items()):
        for s in sums:
            key = (s.experiment_id, s.variation_id, s.event_name, s.metric)
            before = running.get(key, Sums(0, 0.0, 0.0))
            running[key] = Sums(*(x + y for x, y in zip(astuple(before), astuple(s.sums), strict=True)))
        so_far = [MetricSums(e, v, n, m, total) for (e, v, n, m), total in running.items()]
        for r in experiment_metrics(so_far, baselines):
            if r.variation_id != r.baseline_variation_id:
                point = CumulativePoint(day, r.units, r.lift, r.seq_ci_low, r.seq_ci_high)
                out.setdefault((r.event_name, r.metric, r.variation_id), []).append(point)
    return out
