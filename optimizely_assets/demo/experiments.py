"""The synthetic export's experiments: ids, names, per-visitor bucketing, and the two stories the
demo's results show."""

from __future__ import annotations

import numpy as np


def experiment_ids(count: int) -> list[str]:
    return [str(18_786_493_700 + 13 * i) for i in range(count)]


# The demo's results show both stories an analyst looks for: a real effect (the first
# experiment's treatment converts more on `purchase`) and a broken split (the second one sends
# 60% of visitors to treatment while both variations are allocated 50%: a sample ratio mismatch).
EFFECT_EXPERIMENT, SRM_EXPERIMENT = str(18_786_493_700), str(18_786_493_713)
NO_EFFECT_EXPERIMENT = str(18_786_493_726)  # "Homepage hero": treatment and control alike
_TREATMENT_SHARE = {SRM_EXPERIMENT: 0.6}
_NAMES = (
    "Checkout button colour",
    "Pricing page layout",
    "Homepage hero",
    "Search ranking",
    "Free shipping banner",
    "Product page reviews",
    "Onboarding email",
    "Cart reminder",
    "Recommendations",
    "Sign-up form",
    "Mobile menu",
    "Promo code field",
)


def synthetic_experiment_names(count: int = len(_NAMES)) -> dict[str, tuple[str, dict[str, str]]]:
    """Experiment id -> (name, variation id -> name) for the synthetic export's experiments."""
    out = {}
    for i, e in enumerate(experiment_ids(count)):
        exp = int(e)
        out[e] = (_NAMES[i % len(_NAMES)], {str(exp + 1): "control", str(exp + 2): "treatment"})
    return out


def visitor_nums(visitors: np.ndarray) -> np.ndarray:
    return np.array([int(v[5:]) if str(v).startswith("user_") else hash(v) % 2**31 for v in visitors])


def treated(exp: int, visitor_nums: np.ndarray) -> np.ndarray:
    """Bucketed by a hash of (experiment, visitor), as Optimizely does: a visitor keeps its
    variation, and its variations in two experiments are independent (a linear hash would put the
    same visitors in treatment everywhere, and the effect experiment's lift would show in all)."""
    x = visitor_nums.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(exp)
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):  # splitmix64's finaliser
        x = (x ^ (x >> np.uint64(shift))) * np.uint64(mult)
    bucket = (x >> np.uint64(11)).astype(np.float64) / 2.0**53
    return bucket < _TREATMENT_SHARE.get(str(exp), 0.5)


def give_treatment_more_purchases(
    experiments: int,
    visitor_pool: int,
    visitor_nums: np.ndarray,
    purchases: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Move 40% of the control visitors' purchases of the effect experiment to treatment visitors."""
    if EFFECT_EXPERIMENT not in experiment_ids(experiments):
        return
    exp = int(EFFECT_EXPERIMENT)
    pool = np.arange(visitor_pool)
    treated_pool = pool[treated(exp, pool)]
    if treated_pool.size == 0:
        return
    moved = purchases & ~treated(exp, visitor_nums) & (rng.random(visitor_nums.size) < 0.4)
    visitor_nums[moved] = rng.choice(treated_pool, int(moved.sum()))


def shape_events(
    experiments: int,
    visitor_pool: int,
    visitor_nums: np.ndarray,
    purchases: np.ndarray | None,
    rng: np.random.Generator,
) -> None:
    """Visitors differ in how active they are, the same on every day (a fixed log-normal activity
    per visitor): what a visitor did before exposure predicts what it does after, as in real
    traffic, and that is what CUPED's covariate uses. Then the effect experiment's treatment gets
    more purchases."""
    activity = np.random.default_rng(visitor_pool).lognormal(0.0, 2.0, visitor_pool)
    visitor_nums[:] = rng.choice(visitor_pool, visitor_nums.size, p=activity / activity.sum())
    if purchases is not None:
        give_treatment_more_purchases(experiments, visitor_pool, visitor_nums, purchases, rng)
