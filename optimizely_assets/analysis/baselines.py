"""Which variation each experiment's others are compared with.

In order: the one configured for the experiment (the ``experiments`` asset's ``baselines`` config,
over ``OPTIMIZELY_BASELINES``), else the first variation Optimizely's REST API lists (the original),
else the smallest ``variation_id``. A configured baseline the experiment does not have is an error
that names it: comparing against the wrong arm silently would invert every lift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from optimizely_assets.warehouse.analysis import ExperimentRow


class BaselineError(ValueError):
    pass


def choose_baselines(
    rows: list[ExperimentRow], configured: Mapping[str, str], where: str = "baselines"
) -> list[ExperimentRow]:
    by_experiment: dict[str, list[ExperimentRow]] = {}
    for r in rows:
        by_experiment.setdefault(r.experiment_id, []).append(r)
    out: list[ExperimentRow] = []
    for experiment_id, variations in by_experiment.items():
        ids = sorted(r.variation_id for r in variations)
        listed_first = [r.variation_id for r in variations if r.is_baseline]
        if experiment_id in configured:
            chosen = configured[experiment_id]
            if chosen not in ids:
                raise BaselineError(
                    f"{where}: experiment {experiment_id} has no variation {chosen!r} "
                    f"(its variations: {', '.join(ids)})"
                )
        else:
            chosen = listed_first[0] if listed_first else ids[0]
        out += [replace(r, is_baseline=r.variation_id == chosen) for r in variations]
    return out
