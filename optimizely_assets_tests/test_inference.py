"""The statistics against SciPy and against the same definitions computed from per-unit rows."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from optimizely_assets.analysis.inference import (
    Sums,
    benjamini_hochberg,
    cuped,
    fixed_horizon,
    sequential,
    t_quantile,
    t_sf,
)


@pytest.mark.parametrize("dof", [1.0, 2.5, 7.0, 30.0, 812.3, 1e6])
@pytest.mark.parametrize("t", [-4.0, -1.2, 0.0, 0.3, 1.96, 3.5, 9.0])
def test_t_tail_and_quantile_match_scipy(t, dof):
    assert t_sf(t, dof) == pytest.approx(stats.t.sf(t, dof), rel=1e-9, abs=1e-15)
    q = stats.t.cdf(t, dof)
    if 1e-12 < q < 1 - 1e-12:
        assert t_quantile(q, dof) == pytest.approx(t, rel=1e-7, abs=1e-7)


def sums(values: list[float], pre: list[float] | None = None) -> Sums:
    pre = pre or [0.0] * len(values)
    return Sums(
        len(values),
        sum(values),
        sum(v * v for v in values),
        sum(pre),
        sum(x * x for x in pre),
        sum(x * y for x, y in zip(pre, values, strict=True)),
    )


def welch_by_hand(a: list[float], b: list[float], proportion: bool):
    """The reference's definitions, from the unit rows, with SciPy's t."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    var = (lambda m, xs: m * (1 - m)) if proportion else (lambda m, xs: stats.tvar(xs))
    va, vb = var(ma, a), var(mb, b)
    lift = (mb - ma) / ma
    v = vb / (ma**2 * len(b)) + va * mb**2 / (ma**4 * len(a))
    dof = (vb / len(b) + va / len(a)) ** 2 / (
        vb**2 / (len(b) ** 2 * (len(b) - 1)) + va**2 / (len(a) ** 2 * (len(a) - 1))
    )
    half = stats.t.ppf(0.975, dof) * math.sqrt(v)
    return lift, lift - half, lift + half, 2 * stats.t.sf(abs(lift) / math.sqrt(v), dof)


@pytest.mark.parametrize("proportion", [True, False])
def test_fixed_horizon_lift_interval_and_p_follow_the_definitions(proportion):
    rng = random.Random(7)
    if proportion:
        a = [float(rng.random() < 0.10) for _ in range(4000)]
        b = [float(rng.random() < 0.12) for _ in range(3900)]
    else:
        a = [rng.expovariate(1 / 50) if rng.random() < 0.3 else 0.0 for _ in range(3000)]
        b = [rng.expovariate(1 / 55) if rng.random() < 0.3 else 0.0 for _ in range(3100)]
    got = fixed_horizon(sums(a), sums(b), proportion)
    assert (got.lift, got.ci_low, got.ci_high, got.p_value) == pytest.approx(
        welch_by_hand(a, b, proportion), rel=1e-7
    )
    assert got.note is None


def test_no_inference_says_why():
    zero = Sums(100, 0, 0)
    some = Sums(100, 10, 10)
    assert fixed_horizon(zero, some, True).note == "baseline mean is 0: a relative lift is undefined"
    assert fixed_horizon(Sums(1, 1, 1), some, True).note == "fewer than 2 units in a variation"
    flat = Sums(100, 100, 100)
    assert fixed_horizon(flat, flat, False).note == "zero variance in a variation"
    assert sequential(zero, some, True).p_value is None and cuped(zero, some, True).lift is None


def test_hand_computed_proportion_and_bh():
    """Worked on paper: 10% vs 12% of 1,000 units each; BH of three p-values."""
    got = fixed_horizon(Sums(1000, 100, 100), Sums(1000, 120, 120), True)
    # lift = 0.02 / 0.1; V = 0.12·0.88/(0.01·1000) + 0.09·0.0144/(0.0001·1000) = 0.01056 + 0.01296
    assert got.lift == pytest.approx(0.2, rel=1e-12)
    v = 0.02352
    # Welch's dof: (0.1056e-3 + 0.09e-3)^2 / (0.1056e-3^2/999 + 0.09e-3^2/999)
    dof = (0.1056e-3 + 0.09e-3) ** 2 / ((0.1056e-3) ** 2 / 999 + (0.09e-3) ** 2 / 999)
    assert got.ci_high - got.lift == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(v), rel=1e-9)
    assert benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04], rel=1e-12)


def test_the_sequential_interval_is_wider_and_its_p_larger_than_a_single_look():
    rng = random.Random(3)
    a = [float(rng.random() < 0.10) for _ in range(20000)]
    b = [float(rng.random() < 0.11) for _ in range(20000)]
    once, always = fixed_horizon(sums(a), sums(b), True), sequential(sums(a), sums(b), True)
    assert always.lift == pytest.approx(once.lift)
    assert always.ci_low < once.ci_low < once.lift < once.ci_high < always.ci_high
    assert once.p_value < always.p_value <= 1
    # The reference's formulas, term by term.
    n, v = 40000, ((once.ci_high - once.lift) / stats.t.ppf(0.975, 39998)) ** 2
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000
    half = math.sqrt(v * n) * math.sqrt(
        2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / 0.05) / (n * n * rho2)
    )
    assert always.ci_high - always.lift == pytest.approx(half, rel=1e-3)


def test_a_sequential_p_value_stays_valid_under_daily_peeking():
    """A/A tests looked at on each of 30 days: the always-valid p crosses 0.05 in about 5% or fewer."""
    rng = random.Random(11)
    crossed = 0
    for _ in range(200):
        a = b = Sums(0, 0, 0)
        hit = False
        for _day in range(30):
            xa = [float(rng.random() < 0.2) for _ in range(200)]
            xb = [float(rng.random() < 0.2) for _ in range(200)]
            a = Sums(a.n + 200, a.sum + sum(xa), a.sum_squares + sum(xa))
            b = Sums(b.n + 200, b.sum + sum(xb), b.sum_squares + sum(xb))
            p = sequential(a, b, True).p_value
            hit = hit or (p is not None and p < 0.05)
        crossed += hit
    assert crossed / 200 <= 0.06


def test_cuped_equals_the_adjustment_computed_from_the_unit_rows_and_narrows_the_interval():
    rng = random.Random(5)

    def units(n: int, effect: float) -> tuple[list[float], list[float]]:
        pre = [rng.gauss(100, 20) for _ in range(n)]
        post = [0.8 * x + rng.gauss(0, 8) + effect for x in pre]
        return pre, post

    (xa, ya), (xb, yb) = units(3000, 0.0), units(3000, 2.0)
    got = cuped(sums(ya, xa), sums(yb, xb), False)
    xs, ys = xa + xb, ya + yb
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (len(xs) - 1)
    theta = cov / stats.tvar(xs)  # pooled over both variations
    adj_a = sum(ya) / 3000 - theta * sum(xa) / 3000
    adj_b = sum(yb) / 3000 - theta * sum(xb) / 3000
    assert got.lift == pytest.approx((adj_b - adj_a) / (sum(ya) / 3000), rel=1e-9)
    plain = fixed_horizon(sums(ya), sums(yb), False)
    assert (got.ci_high - got.ci_low) < 0.5 * (plain.ci_high - plain.ci_low)
    assert got.ci_low < got.lift < got.ci_high


def test_benjamini_hochberg_matches_scipy_and_keeps_missing_values():
    ps = [0.001, 0.04, None, 0.03, 0.2, 0.5, 0.012]
    got = benjamini_hochberg(ps)
    expected = stats.false_discovery_control([p for p in ps if p is not None], method="bh")
    assert [g for g in got if g is not None] == pytest.approx(list(expected), rel=1e-12)
    assert got[2] is None


def test_experiment_metrics_compare_each_variation_with_the_baseline_and_control_fdr():
    from optimizely_assets.analysis.metrics import experiment_metrics
    from optimizely_assets.warehouse.analysis import MetricSums

    a, b, c = Sums(4000, 400, 400), Sums(3900, 470, 470), Sums(4100, 405, 405)
    zero = Sums(50, 0, 0)
    sums = [
        MetricSums("e1", "v1", "purchase", "conversion", a),
        MetricSums("e1", "v2", "purchase", "conversion", b),
        MetricSums("e1", "v3", "purchase", "conversion", c),
        MetricSums("e2", "x1", "signup", "count", zero),
        MetricSums("e2", "x2", "signup", "count", Sums(50, 3, 3)),
    ]
    rows = {(r.experiment_id, r.variation_id): r for r in experiment_metrics(sums)}
    base = rows[("e1", "v1")]
    assert (
        base.baseline_variation_id == "v1" and base.lift is None and base.units == 4000 and base.mean == 0.1
    )
    v2 = rows[("e1", "v2")]
    expected = fixed_horizon(a, b, True)
    assert (v2.lift, v2.ci_low, v2.ci_high, v2.p_value) == (
        expected.lift,
        expected.ci_low,
        expected.ci_high,
        expected.p_value,
    )
    assert v2.seq_p_value == sequential(a, b, True).p_value
    ps = [rows[("e1", v)].p_value for v in ("v2", "v3")]
    assert [rows[("e1", v)].fdr_p_value for v in ("v2", "v3")] == benjamini_hochberg(ps)
    # A zero baseline: no numbers, the reason instead; the baseline is set per experiment when given.
    assert rows[("e2", "x2")].lift is None and "baseline mean is 0" in rows[("e2", "x2")].note
    again = {(r.experiment_id, r.variation_id): r for r in experiment_metrics(sums, {"e1": "v3"})}
    assert again[("e1", "v3")].lift is None and again[("e1", "v1")].baseline_variation_id == "v3"
