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


UNALLOCATED = "(none)"  # how a unit without a variation_id is named


@dataclass(frozen=True)
class SrmResult:
    experiment_id: str
    units: dict[str, int]  # allocated variation_id -> units (0 where it has none)
    expected_share: dict[str, float]  # allocated variation_id -> share of traffic it should get
    allocation: str  # "api" (the experiment's traffic allocation) or "equal"
    statistic: float | None  # None when fewer than two variations are allocated
    p_value: float | None
    unallocated: dict[str, int]  # units in variations with weight 0, unknown to the allocation, or NULL

    @property
    def mismatch(self) -> bool:
        """A low p-value, or any unit in a variation that gets no traffic."""
        return bool(self.unallocated) or (self.p_value is not None and self.p_value < SRM_P_THRESHOLD)

    def verdict(self) -> str:
        parts = []
        if self.p_value is not None:
            parts.append(f"chi-square p = {self.p_value:.2g}, {self.allocation} allocation")
        if self.unallocated:
            parts.append(
                f"{sum(self.unallocated.values()):,} unit(s) in unallocated variation(s) "
                + ", ".join(sorted(self.unallocated))
            )
        return "; ".join(parts)


def srm_test(
    experiment_id: str, units: dict[str | None, int], weights: dict[str, float] | None = None
) -> SrmResult | None:
    """Chi-square of observed units per variation against ``weights`` (any scale), else an equal
    split of the observed variations.

    With weights, every variation of positive weight takes part (0 units where it has none) and
    keeps its share; units in a variation of weight 0, one the allocation does not name, or none
    (``None``) are reported as unallocated, a mismatch by themselves. ``None`` when there is
    nothing to compare: no units, or one variation and nothing unallocated.
    """
    counts = {UNALLOCATED if v is None else str(v): n for v, n in units.items() if n}
    allocated = {str(v): float(w) for v, w in (weights or {}).items() if w is not None and w > 0}
    allocation = "api" if allocated else "equal"
    if not allocated:  # no known allocation: the observed variations, equally
        allocated = {v: 1.0 for v in counts if v != UNALLOCATED}
    unallocated = {v: n for v, n in counts.items() if v not in allocated}
    variations = sorted(allocated)
    total = sum(counts.get(v, 0) for v in variations)
    if total == 0 and not unallocated:
        return None
    if len(variations) < 2 or total == 0:
        if not unallocated:
            return None
        statistic = p_value = None
    else:
        scale = sum(allocated.values())
        expected = {v: total * allocated[v] / scale for v in variations}
        statistic = sum((counts.get(v, 0) - expected[v]) ** 2 / expected[v] for v in variations)
        p_value = chi_square_sf(statistic, len(variations) - 1)
    scale = sum(allocated.values())
    return SrmResult(
        experiment_id,
        {v: counts.get(v, 0) for v in variations},
        {v: allocated[v] / scale for v in variations},
        allocation,
        statistic,
        p_value,
        unallocated,
    )


def srm_tests(rows: Iterable, weights: dict[str, dict[str, float]] | None = None) -> list[SrmResult]:
    """One test per experiment of result rows (``warehouse.analysis.ResultRow``: one per variation
    and event name, each carrying the variation's units), by experiment id. ``weights`` are the
    allocations of the experiments dimension (``ExperimentAnalysis.allocations``), weight 0 included."""
    units: dict[str, dict[str | None, int]] = {}
    for r in rows:
        units.setdefault(r.experiment_id, {})[r.variation_id] = r.units
    weights = weights or {}
    return [t for e in sorted(units) if (t := srm_test(e, units[e], weights.get(e)))]
