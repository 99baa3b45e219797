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
    bucket = (
        (visitor_nums.astype(np.uint64) * np.uint64(2_654_435_761) + np.uint64(exp)) % np.uint64(2**32)
    ) / 2**32
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
