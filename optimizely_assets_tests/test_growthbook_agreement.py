"""Every figure of inference.py against GrowthBook's own engine (gbstats 0.8.0), to 1e-6 relative.

gbstats is installed by the Makefile as a test-only reference (its pins on pandas < 2 and numpy < 2
are stale upper bounds; the modules used here run on the project's versions). Cases: a proportion,
a mean, a zero-mean baseline, a variation without variance, CUPED on both kinds, and the sequential
interval and p. Benjamini-Hochberg is not in gbstats: test_inference.py checks it against SciPy and
a hand case.
"""

from __future__ import annotations

import random

import pytest
from gbstats.frequentist.tests import SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)

from optimizely_assets.analysis.inference import Inference, Sums, cuped, fixed_horizon, sequential

REL = 1e-6


def gb_stat(s: Sums, proportion: bool, pre: bool = False):
    total, squares = (s.pre_sum, s.pre_sum_squares) if pre else (s.sum, s.sum_squares)
    if proportion:
        return ProportionStatistic(n=s.n, sum=total)
    return SampleMeanStatistic(n=s.n, sum=total, sum_squares=squares)


def gb_cuped(a: Sums, b: Sums, proportion: bool):
    def adjusted(s: Sums, theta: float) -> RegressionAdjustedStatistic:
        return RegressionAdjustedStatistic(
            n=s.n,
            post_statistic=gb_stat(s, proportion),
            pre_statistic=gb_stat(s, proportion, pre=True),
            post_pre_sum_of_products=s.sum_products,
            theta=theta,
        )

    theta = compute_theta(adjusted(a, 0), adjusted(b, 0))
    return adjusted(a, theta), adjusted(b, theta)


def assert_agrees(ours: Inference, theirs) -> None:
    assert theirs.error_message is None and ours.note is None
    assert ours.lift == pytest.approx(theirs.expected, rel=REL)
    assert [ours.ci_low, ours.ci_high] == pytest.approx(theirs.ci, rel=REL)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=REL)


def units(rng: random.Random, n: int, proportion: bool, effect: float) -> Sums:
    """n units with a covariate correlated with the metric, as the warehouse would sum them."""
    xs, ys = [], []
    for _ in range(n):
        if proportion:
            x = float(rng.random() < 0.3)
            y = float(rng.random() < 0.08 + 0.1 * x + effect)
        else:
            x = rng.expovariate(1 / 40) if rng.random() < 0.4 else 0.0
            y = max(0.0, 0.6 * x + rng.gauss(10 + effect * 100, 15))
        xs.append(x)
        ys.append(y)
    return Sums(
        n,
        sum(ys),
        sum(y * y for y in ys),
        sum(xs),
        sum(x * x for x in xs),
        sum(x * y for x, y in zip(xs, ys, strict=True)),
    )


@pytest.mark.parametrize("proportion", [True, False], ids=["proportion", "mean"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixed_sequential_and_cuped_agree_with_gbstats(proportion, seed):
    rng = random.Random(seed)
    a, b = units(rng, 2500, proportion, 0.0), units(rng, 2600, proportion, 0.02)
    gb_a, gb_b = gb_stat(a, proportion), gb_stat(b, proportion)
    assert_agrees(fixed_horizon(a, b, proportion), TwoSidedTTest(gb_a, gb_b).compute_result())
    assert_agrees(sequential(a, b, proportion), SequentialTwoSidedTTest(gb_a, gb_b).compute_result())
    assert_agrees(cuped(a, b, proportion), TwoSidedTTest(*gb_cuped(a, b, proportion)).compute_result())


@pytest.mark.parametrize(
    ("a", "b", "proportion"),
    [
        (Sums(500, 0, 0), Sums(500, 20, 20), True),  # zero-mean baseline
        (Sums(500, 0, 0), Sums(500, 35, 300), False),
        (Sums(500, 40, 40), Sums(500, 0, 0), True),  # a variation without conversions
        (Sums(500, 500, 500), Sums(500, 510, 530), False),  # a baseline without variance
    ],
)
def test_no_inference_exactly_where_gbstats_gives_none(a, b, proportion):
    theirs = TwoSidedTTest(gb_stat(a, proportion), gb_stat(b, proportion)).compute_result()
    assert theirs.error_message is not None
    for ours in (fixed_horizon(a, b, proportion), sequential(a, b, proportion), cuped(a, b, proportion)):
        assert ours.note and ours.lift is None and ours.p_value is None


def test_cuped_without_a_covariate_is_the_plain_test_as_in_gbstats():
    """No pre-exposure activity at all: θ = 0, and CUPED's figures are the unadjusted ones."""
    a, b = Sums(3000, 300, 300), Sums(3000, 345, 345)
    plain = fixed_horizon(a, b, True)
    assert cuped(a, b, True) == plain
    assert_agrees(cuped(a, b, True), TwoSidedTTest(*gb_cuped(a, b, True)).compute_result())
