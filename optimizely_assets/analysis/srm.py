"""Sample ratio mismatch: a chi-square goodness-of-fit test of units per variation.

Pure Python (no SciPy): the p-value is the regularised upper incomplete gamma function
Q(k/2, x/2), by its series below a + 1 and its continued fraction above (Numerical Recipes 6.2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

SRM_P_THRESHOLD = 0.001


def _gamma_q(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:  # series for P(a, x)
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Lentz's continued fraction for Q(a, x)
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"chi-square needs at least 1 degree of freedom, got {dof}")
    return _gamma_q(dof / 2, statistic / 2)


@dataclass(frozen=True)
class SrmResult:
    experiment_id: str
    units: dict[str, int]  # variation_id -> units
    expected_share: dict[str, float]  # variation_id -> share of traffic it should get
    allocation: str  # "api" (the experiment's traffic allocation) or "equal"
    statistic: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_P_THRESHOLD


def srm_test(
    experiment_id: str, units: dict[str, int], weights: dict[str, float] | None = None
) -> SrmResult | None:
    """Chi-square of observed units per variation against ``weights`` (any scale), else an equal split.

    Variations with a weight but no units count as observed zeros. ``None`` when fewer than two
    variations or no units: there is nothing to compare.
    """
    weights = {v: w for v, w in (weights or {}).items() if w and w > 0}
    allocation = "api" if weights and set(units) <= set(weights) else "equal"
    variations = sorted(set(units) | set(weights)) if allocation == "api" else sorted(units)
    total = sum(units.get(v, 0) for v in variations)
    if len(variations) < 2 or total == 0:
        return None
    if allocation == "api":
        scale = sum(weights[v] for v in variations)
        share = {v: weights[v] / scale for v in variations}
    else:
        share = {v: 1 / len(variations) for v in variations}
    statistic = sum((units.get(v, 0) - total * share[v]) ** 2 / (total * share[v]) for v in variations)
    return SrmResult(
        experiment_id,
        {v: units.get(v, 0) for v in variations},
        share,
        allocation,
        statistic,
        chi_square_sf(statistic, len(variations) - 1),
    )


def srm_tests(rows: Iterable) -> list[SrmResult]:
    """One test per experiment of result rows (``warehouse.analysis.ResultRow``: one per variation
    and event name, each carrying the variation's units and weight), by experiment id."""
    units: dict[str, dict[str, int]] = {}
    weights: dict[str, dict[str, float]] = {}
    for r in rows:
        units.setdefault(r.experiment_id, {})[r.variation_id] = r.units
        if r.weight is not None:
            weights.setdefault(r.experiment_id, {})[r.variation_id] = r.weight
    return [t for e in sorted(units) if (t := srm_test(e, units[e], weights.get(e)))]
