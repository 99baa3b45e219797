"""The baseline each experiment is compared with: configured, the API's first listed, the smallest id."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterInstance

from optimizely_assets.analysis.baselines import BaselineError, choose_baselines
from optimizely_assets.assets.keys import METRICS_KEY, NAMES_KEY, RESULTS_KEY
from optimizely_assets.definitions import build_definitions
from optimizely_assets.demo.experiments import EFFECT_EXPERIMENT
from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.instance import atomic_slot_claims
from optimizely_assets.settings import Settings, SettingsError
from optimizely_assets.warehouse.analysis import ExperimentAnalysis, ExperimentRow
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets_tests.helpers import QUIET, local_settings, run_day

D1 = dt.date(2024, 1, 1)
CONTROL, TREATMENT = str(int(EFFECT_EXPERIMENT) + 1), str(int(EFFECT_EXPERIMENT) + 2)


def rows(experiment: str, variations: list[str], listed_first: str | None = None) -> list[ExperimentRow]:
    return [ExperimentRow(experiment, None, v, None, None, "api", v == listed_first) for v in variations]


def chosen(out: list[ExperimentRow]) -> dict[str, str]:
    return {r.experiment_id: r.variation_id for r in out if r.is_baseline}


def test_configured_then_the_apis_first_listed_then_the_smallest_id():
    given = (
        rows("e1", ["30", "20", "10"], listed_first="20") + rows("e2", ["9", "8"]) + rows("e3", ["a", "b"])
    )
    assert chosen(choose_baselines(given, {})) == {"e1": "20", "e2": "8", "e3": "a"}
    assert chosen(choose_baselines(given, {"e1": "30", "e3": "b", "unseen": "x"})) == {
        "e1": "30",
        "e2": "8",
        "e3": "b",
    }
    assert sum(r.is_baseline for r in choose_baselines(given, {"e1": "30"})) == 3  # one per experiment


def test_a_configured_baseline_the_experiment_lacks_is_an_error_naming_it():
    with pytest.raises(BaselineError, match=r"OPTIMIZELY_BASELINES: experiment e1 has no variation '99'"):
        choose_baselines(rows("e1", ["10", "20"]), {"e1": "99"}, "OPTIMIZELY_BASELINES")


def test_the_setting_parses_pairs_and_names_itself_when_malformed(tmp_path):
    settings = local_settings(tmp_path, OPTIMIZELY_BASELINES=" e1=v2 , e2=v9 ")
    assert dict(settings.baselines) == {"e1": "v2", "e2": "v9"}
    with pytest.raises(SettingsError, match="OPTIMIZELY_BASELINES: 'e1' is not"):
        Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path), "OPTIMIZELY_BASELINES": "e1"})


def _metrics_against(settings: Settings, instance: DagsterInstance, config: dict | None = None):
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    run_config = {**QUIET}
    if config is not None:
        run_config["ops"] = {"analysis__experiments": {"config": {"baselines": config}}}
    return job.execute_in_process(
        partition_key=D1.isoformat(),
        asset_selection=[NAMES_KEY, RESULTS_KEY, METRICS_KEY],
        instance=atomic_slot_claims(instance),
        run_config=run_config,
        raise_on_error=False,
    )


def test_the_experiments_asset_sets_the_baseline_experiment_metrics_compares_with(tmp_path):
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [D1], ExportSpec(decisions_per_day=6_000, events_per_day=3_000))
    instance = DagsterInstance.ephemeral()
    assert run_day(settings, D1, instance).success
    analysis = ExperimentAnalysis(DuckDBWarehouse(path=str(settings.duckdb_path)))

    def purchase_lift(variation: str) -> tuple[str, float | None]:
        ((base, lift),) = analysis.query(
            "SELECT baseline_variation_id, lift FROM experiment_metrics WHERE experiment_id = "
            f"'{EFFECT_EXPERIMENT}' AND variation_id = '{variation}' AND event_name = 'purchase' "
            "AND metric = 'conversion'"
        )
        return base, lift

    base, lift = purchase_lift(TREATMENT)  # offline, the smallest id: control
    assert base == CONTROL and lift > 0
    assert _metrics_against(settings, instance, {EFFECT_EXPERIMENT: TREATMENT}).success
    assert analysis.baselines()[EFFECT_EXPERIMENT] == TREATMENT
    base, lift = purchase_lift(CONTROL)
    assert base == TREATMENT and lift < 0
    assert purchase_lift(TREATMENT)[1] is None  # the baseline's row carries no lift
    # The setting is the default automated runs use; the same check against a wrong id fails the step.
    wrong = local_settings(tmp_path / "local", OPTIMIZELY_BASELINES=f"{EFFECT_EXPERIMENT}=nope")
    failed = _metrics_against(wrong, instance)
    assert not failed.success
    (error,) = [e for e in failed.all_events if e.is_step_failure]
    assert f"OPTIMIZELY_BASELINES: experiment {EFFECT_EXPERIMENT} has no variation 'nope'" in str(
        error.step_failure_data.error.cause or error.step_failure_data.error
    )
    assert analysis.baselines()[EFFECT_EXPERIMENT] == TREATMENT  # untouched by the failed run
