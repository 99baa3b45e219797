"""Lift, intervals, sequential p-values, CUPED and FDR from warehouse sums (pure, no SciPy).

Definitions: ../shared/reference/experiment-statistics.md (GrowthBook's public formulas; Welch;
Waudby-Smith et al.'s asymptotic confidence sequence; Deng et al.'s CUPED; Benjamini-Hochberg).
Every function takes the sufficient statistics the warehouse returns (n, Σx, Σx², and for CUPED
Σ of the pre-exposure covariate, its Σx² and Σxy) and returns numbers, or a note saying why not.
The t distribution is the regularised incomplete beta function (Numerical Recipes 6.4's continued
fraction); its quantile is found by Newton's method on the CDF inside a bisection bracket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
TAU = 5000.0  # the confidence sequence's tuning parameter (GrowthBook's default)


@dataclass(frozen=True)
class Sums:
    """One variation's metric: n units (converted or not), Σx, Σx²; for CUPED the covariate's."""

    n: int
    sum: float
    sum_squares: float
    pre_sum: float = 0.0
    pre_sum_squares: float = 0.0
    sum_products: float = 0.0  # Σxy: covariate times metric, per unit

    @property
    def mean(self) -> float:
        return self.sum / self.n

    def variance(self, proportion: bool) -> float:
        if proportion:
            p = self.mean
            return p * (1 - p)
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


@dataclass(frozen=True)
class Inference:
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    note: str | None = None  # why the numbers are missing


def _beta_cf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (tiny if abs(d) < tiny else d)
    h = d
    for m in range(1, 10_000):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (tiny if abs(d) < tiny else d)
            c = 1 + num / c
            c = tiny if abs(c) < tiny else c
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _beta_inc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_cf(a, b, x) / a
    return 1 - front * _beta_cf(b, a, 1 - x) / b


def t_sf(t: float, dof: float) -> float:
    """P(T > t) for Student's t with ``dof`` degrees of freedom."""
    x = dof / (dof + t * t)
    # Near t = 0 (x near 1) the complement keeps its digits: P(|T| < t) = I_{t²/(ν+t²)}(1/2, ν/2).
    tail = (
        0.5 * (1 - _beta_inc(0.5, dof / 2, t * t / (dof + t * t)))
        if x > 0.5
        else 0.5 * _beta_inc(dof / 2, 0.5, x)
    )
    return tail if t >= 0 else 1 - tail


def _t_pdf(t: float, dof: float) -> float:
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_c - (dof + 1) / 2 * math.log1p(t * t / dof))


def t_quantile(q: float, dof: float) -> float:
    """The t such that P(T <= t) = q: Newton's steps on the CDF, kept inside a bisection bracket
    (the CDF is monotone), to 1e-13; a few evaluations instead of a bisection's hundreds."""
    lo, hi, t = -1e3, 1e3, 0.0
    for _ in range(200):
        err = (1 - t_sf(t, dof)) - q
        if abs(err) < 1e-15:
            break
        if err < 0:
            lo = t
        else:
            hi = t
        step = t - err / max(_t_pdf(t, dof), 1e-300)
        t_next = step if lo < step < hi else (lo + hi) / 2
        if abs(t_next - t) <= 1e-13 * max(1.0, abs(t)):
            t = t_next
            break
        t = t_next
    return t


def _why_not(a: Sums, b: Sums, proportion: bool) -> str | None:
    if a.n < 2 or b.n < 2:
        return "fewer than 2 units in a variation"
    if a.mean == 0:
        return "baseline mean is 0: a relative lift is undefined"
    # As GrowthBook: one variation without variance (no conversions, or all alike) is no test.
    if a.variance(proportion) <= 0 or b.variance(proportion) <= 0:
        return "zero variance in a variation"
    return None


def _delta(a: Sums, b: Sums, mean_a: float, mean_b: float, var_a: float, var_b: float) -> tuple[float, float]:
    """Relative lift and its delta-method variance: σ²_B/(μ_A² n_B) + σ²_A μ_B²/(μ_A⁴ n_A)."""
    lift = (mean_b - mean_a) / mean_a
    v = var_b / (mean_a**2 * b.n) + var_a * mean_b**2 / (mean_a**4 * a.n)
    return lift, v


def fixed_horizon(a: Sums, b: Sums, proportion: bool, alpha: float = ALPHA) -> Inference:
    """Relative lift of B over baseline A, delta-method variance, Welch's t at ``alpha``."""
    if why := _why_not(a, b, proportion):
        return Inference(note=why)
    va, vb = a.variance(proportion), b.variance(proportion)
    lift, v = _delta(a, b, a.mean, b.mean, va, vb)
    if v <= 0:
        return Inference(lift=lift, note="zero variance of the lift")
    dof = (vb / b.n + va / a.n) ** 2 / (vb**2 / (b.n**2 * (b.n - 1)) + va**2 / (a.n**2 * (a.n - 1)))
    half = t_quantile(1 - alpha / 2, dof) * math.sqrt(v)
    p = min(1.0, 2 * t_sf(abs(lift) / math.sqrt(v), dof))
    return Inference(lift, lift - half, lift + half, p)


def sequential(a: Sums, b: Sums, proportion: bool, alpha: float = ALPHA, tau: float = TAU) -> Inference:
    """The asymptotic confidence sequence (Waudby-Smith et al., eqs. 9, 155, 161): valid at every look."""
    if why := _why_not(a, b, proportion):
        return Inference(note=why)
    lift, v = _delta(a, b, a.mean, b.mean, a.variance(proportion), b.variance(proportion))
    if v <= 0:
        return Inference(lift=lift, note="zero variance of the lift")
    n = a.n + b.n
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tau
    s2 = v * n
    half = math.sqrt(s2) * math.sqrt(
        2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha) / (n**2 * rho2)
    )
    log_e = rho2 * (lift**2 * n / v) / (2 * (n * rho2 + 1)) - 0.5 * math.log(n * rho2 + 1)
    p = 1.0 if log_e <= 0 else min(1.0, math.exp(-log_e))
    return Inference(lift, lift - half, lift + half, p)


def _pre(s: Sums) -> Sums:
    """The covariate as a statistic of its own: n, Σx, Σx²."""
    return Sums(s.n, s.pre_sum, s.pre_sum_squares)


def _cov(s: Sums) -> float:
    return (s.sum_products - s.pre_sum * s.sum / s.n) / (s.n - 1)


def cuped(a: Sums, b: Sums, proportion: bool, alpha: float = ALPHA) -> Inference:
    """CUPED (Deng et al.) as GrowthBook defines it: θ pooled over both variations (0 when the
    pooled covariate or metric has no variance); the delta method on the adjusted variances with
    the unadjusted means, so the lift's denominator is A's raw mean."""
    if why := _why_not(a, b, proportion):
        return Inference(note=why)
    pooled = Sums(
        a.n + b.n,
        a.sum + b.sum,
        a.sum_squares + b.sum_squares,
        a.pre_sum + b.pre_sum,
        a.pre_sum_squares + b.pre_sum_squares,
        a.sum_products + b.sum_products,
    )
    var_x = _pre(pooled).variance(proportion)
    theta = 0.0 if var_x <= 0 or pooled.variance(proportion) <= 0 else _cov(pooled) / var_x

    def adjusted(s: Sums) -> tuple[float, float]:
        variance = s.variance(proportion) + theta**2 * _pre(s).variance(proportion) - 2 * theta * _cov(s)
        return s.mean - theta * s.pre_sum / s.n, variance

    (ma, va), (mb, vb) = adjusted(a), adjusted(b)
    if ma == 0:
        return Inference(note="adjusted baseline mean is 0: a relative lift is undefined")
    if va <= 0 or vb <= 0:
        return Inference(note="zero variance after adjustment")
    lift = (mb - ma) / a.mean
    v = vb / (a.mean**2 * b.n) + va * b.mean**2 / (a.mean**4 * a.n)
    dof = (vb / b.n + va / a.n) ** 2 / (vb**2 / (b.n**2 * (b.n - 1)) + va**2 / (a.n**2 * (a.n - 1)))
    half = t_quantile(1 - alpha / 2, dof) * math.sqrt(v)
    return Inference(lift, lift - half, lift + half, min(1.0, 2 * t_sf(abs(lift) / math.sqrt(v), dof)))


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """BH-adjusted p-values (step-up, monotone), None where there is no p-value."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    out: list[float | None] = [None] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, i = present[rank - 1]
        running = min(running, p * m / rank)
        out[i] = running
    return out
