"""Corrupt, empty, truncated and schema-drifted files: a clear error naming the file, the day untouched."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import quarantine_name
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets_tests.conftest import SMALL, START, rows_of
from optimizely_assets_tests.helpers import checks_of, local_settings, run_day, table_counts

DAYS = date_range(START, 2)


def _empty(path):
    path.write_bytes(b"")


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_parquet(path):
    path.write_text("uuid,timestamp\n1,2\n")


def _missing_column(path):
    table = pq.read_table(path)
    write_parquet(table.drop_columns(["visitor_id"]), path)


def _retyped_column(path):
    table = pq.read_table(path)
    i = table.column_names.index("is_holdback")
    write_parquet(table.set_column(i, "is_holdback", pa.array(["yes"] * table.num_rows)), path)


@pytest.fixture
def loaded(tmp_path):
    settings = local_settings(tmp_path / "local")
    written = write_export(settings.local_source_dir, DAYS, SMALL)
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        assert run_day(settings, day, instance).success
    return settings, written, instance


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_empty, "not a readable Parquet file"),
        (_truncated, "not a readable Parquet file"),
        (_not_parquet, "not a readable Parquet file"),
        (_missing_column, "missing columns: visitor_id"),
        (_retyped_column, "columns with another type: is_holdback"),
    ],
)
def test_a_bad_file_fails_the_day_by_name_and_leaves_it_untouched(loaded, damage, says):
    settings, written, instance = loaded
    before = table_counts(settings)
    victim = sorted(rows_of(written, ExportType.DECISIONS, DAYS[1]).files)[2]
    damage(settings.local_source_dir / victim)

    result = run_day(settings, DAYS[1], instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "decisions__source_files"
    message = failure.step_failure_data.error.to_string()
    assert victim in message and says in message and "date=2024-01-02" in message
    assert table_counts(settings) == before


def test_quarantine_loads_the_rest_and_keeps_the_bad_file_aside(loaded):
    settings, written, instance = loaded
    w = rows_of(written, ExportType.DECISIONS, DAYS[1])
    victim = sorted(w.files)[2]
    _truncated(settings.local_source_dir / victim)

    result = run_day(settings, DAYS[1], instance, resources={"loader": LoaderConfig(bad_files="quarantine")})
    assert result.success
    checks = checks_of(result)
    assert checks.pop("decisions/source_files:schema_drift") is False  # warns about the quarantined file
    assert all(checks.values()), checks
    raw = table_counts(settings)["decisions_raw"][0]
    assert raw == rows_of(written, ExportType.DECISIONS, DAYS[0]).rows + w.rows - w.files[victim]
    assert (settings.local_staging_dir / "optimizely" / "_quarantine" / quarantine_name(victim)).is_file()
    assert not (settings.local_staging_dir / "optimizely" / victim).exists()


def test_drift_run_alone_lists_the_day_again_and_names_the_quarantined_file(loaded):
    """The UI's "Execute" on the check: nothing is materialized, the warning still names the file."""
    from dagster import AssetCheckKey

    from optimizely_assets.assets.keys import SOURCE_FILES, key
    from optimizely_assets.definitions import DAILY_JOB, build_definitions
    from optimizely_assets_tests.helpers import QUIET

    settings, written, instance = loaded
    victim = sorted(rows_of(written, ExportType.DECISIONS, DAYS[1]).files)[2]
    _truncated(settings.local_source_dir / victim)
    drift_key = AssetCheckKey(key(ExportType.DECISIONS, SOURCE_FILES), "schema_drift")
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    result = job.get_subset(asset_selection=set(), asset_check_selection={drift_key}).execute_in_process(
        partition_key=DAYS[1].isoformat(),
        instance=instance,
        run_config=QUIET,
        resources={"loader": LoaderConfig(bad_files="quarantine")},
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and victim in evaluation.description
    assert result.get_asset_materialization_events() == []


def test_an_added_column_loads_and_is_reported(loaded):
    settings, written, instance = loaded
    victim = sorted(rows_of(written, ExportType.EVENTS, DAYS[1]).files)[0]
    table = pq.read_table(settings.local_source_dir / victim)
    write_parquet(
        table.append_column("anonymize_ip", pa.array([True] * table.num_rows)),
        settings.local_source_dir / victim,
    )
    result = run_day(settings, DAYS[1], instance)
    assert result.success
    checks = checks_of(result)
    assert checks.pop("events/source_files:schema_drift") is False
    assert all(checks.values())
    drift = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "schema_drift" and not e.passed
    ][0]
    assert "anonymize_ip" in drift.description


def test_a_column_differing_only_in_case_fails_the_day_naming_the_file(loaded):
    settings, written, instance = loaded
    victim = sorted(rows_of(written, ExportType.DECISIONS, DAYS[1]).files)[0]
    table = pq.read_table(settings.local_source_dir / victim)
    write_parquet(
        table.append_column("Experiment_ID", table["experiment_id"]), settings.local_source_dir / victim
    )
    before = table_counts(settings)
    result = run_day(settings, DAYS[1], instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    text = failure.step_failure_data.error.to_string()
    assert victim in text and "differ only in case: experiment_id / Experiment_ID" in text
    assert table_counts(settings) == before  # the day is untouched
