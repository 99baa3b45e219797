"""The pipeline on Optimizely's own sample export layout (real files when available)."""

from __future__ import annotations

from dagster import DagsterInstance

from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets_tests import labs_sample
from optimizely_assets_tests.helpers import all_clean, local_settings, query, run_day


def test_labs_sample_loads_with_its_row_counts(tmp_path):
    settings = local_settings(tmp_path / "local", OPTIMIZELY_START_DATE="2020-09-01")
    account, _real = labs_sample.install_sample(settings.local_source_dir)
    settings = local_settings(
        tmp_path / "local", OPTIMIZELY_START_DATE="2020-09-01", OPTIMIZELY_ACCOUNT_ID=account
    )
    instance = DagsterInstance.ephemeral()

    # The sample has _SUCCESS for events only: decisions are refused, by name, under the default.
    first = run_day(settings, labs_sample.DAY, instance)
    assert not first.success
    failed = {e.step_key for e in first.all_events if e.is_step_failure}
    assert failed == {"decisions__source_files"}
    assert query(settings, "SELECT count(*) FROM events_raw")[0][0] == sum(labs_sample.EVENTS.values())

    second = run_day(
        settings, labs_sample.DAY, instance, resources={"loader": LoaderConfig(require_success=False)}
    )
    assert second.success and all_clean(second)
    assert query(settings, "SELECT count(*) FROM decisions_raw")[0][0] == 10_000
    events = dict(query(settings, "SELECT event_name, count(*) FROM events GROUP BY 1"))
    assert events == {k.split("=")[1].split("/")[0]: v for k, v in labs_sample.EVENTS.items()}
    # .crc side files are not data
    meta = second.asset_materializations_for_node("events__source_files")[0].metadata
    assert meta["files"].value == 4
