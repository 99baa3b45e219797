"""Canonical MERGEs into one table never overlap, and a run that could overlap them refuses to start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, EventRecordsFilter

from optimizely_assets.assets.keys import canonical_pool
from optimizely_assets.concurrency import pool_problems
from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.settings import Settings
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import QUIET, local_settings, table_counts

REPO = Path(__file__).resolve().parent.parent
DAYS = date_range(START, 4)


def project_instance(home: Path, monkeypatch) -> DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.get()


def step_intervals(
    instance: DagsterInstance, step_key: str, end: DagsterEventType = DagsterEventType.STEP_SUCCESS
) -> list[tuple[float, float, str]]:
    def times(event_type):
        records = instance.get_event_records(EventRecordsFilter(event_type=event_type))
        return {
            (r.event_log_entry.run_id): r.event_log_entry.timestamp
            for r in records
            if r.event_log_entry.step_key == step_key
        }

    starts, ends = times(DagsterEventType.STEP_START), times(end)
    return sorted((starts[run], ends[run], run) for run in starts)


def test_four_concurrent_runs_never_overlap_two_merges_into_one_table(tmp_path, monkeypatch):
    instance = project_instance(tmp_path / "dagster_home", monkeypatch)
    settings = local_settings(tmp_path / "local")
    written = write_export(settings.local_source_dir, DAYS, SMALL)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optimizely_assets_tests.run_one_day",
                str(tmp_path / "local"),
                d.isoformat(),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for d in DAYS
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0, 0]

    # From STEP_START (logged once the step holds its pool slot) to the canonical materialization
    # (logged once its MERGE committed). Not to STEP_SUCCESS: Dagster frees the slot while handling
    # that event, so the next run's STEP_START can be logged a few ms before it, with no overlap.
    for export_type in ExportType:
        intervals = step_intervals(
            instance, f"{export_type.value}__canonical", DagsterEventType.ASSET_MATERIALIZATION
        )
        assert len(intervals) == 4
        for (_, end, run), (start, _, nxt) in zip(intervals, intervals[1:], strict=False):
            assert end <= start, (
                f"{export_type.value}: the MERGEs of runs {run} and {nxt} overlapped by {end - start:.3f} s"
            )
    # ...and the runs did overlap elsewhere: four processes ran at once, not one after another.
    source = step_intervals(instance, "decisions__source_files")
    assert max(s for s, _, _ in source) < max(
        e for _, e, _ in step_intervals(instance, "decisions__canonical")
    )
    counts = table_counts(settings)
    for export_type in ExportType:
        unique = set().union(*(w.unique_uuids for w in written if w.export_type is export_type))
        assert counts[export_type.value] == (len(unique), len(unique))


def run_stages(settings: Settings, instance: DagsterInstance, stages: tuple[str, ...]):
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    keys = {k for k in job.asset_layer.executable_asset_keys if k.path[-1] in stages}
    return job.get_subset(asset_selection=keys).execute_in_process(
        partition_key=START.isoformat(), instance=instance, raise_on_error=False, run_config=QUIET
    )


BIGQUERY_ENV = {
    "OPTIMIZELY_GCP_PROJECT": "my-project",
    "OPTIMIZELY_GCS_BUCKET": "my-staging",
    "OPTIMIZELY_START_DATE": START.isoformat(),
}


def test_a_launched_bigquery_run_refuses_to_start_on_an_instance_that_allows_two_merges(
    tmp_path, monkeypatch
):
    """`dagster asset materialize` runs the job's own executor: refused before any step starts."""
    instance = project_instance(tmp_path / "dagster_home", monkeypatch)
    instance.event_log_storage.set_concurrency_slots(canonical_pool(ExportType.EVENTS), 4)
    env = {**os.environ, **BIGQUERY_ENV, "OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local")}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "optimizely_assets.definitions",
            "--select",
            "events/canonical",
            "--partition",
            START.isoformat(),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "refusing to start" in proc.stdout + proc.stderr
    assert "'optimizely_canonical_events' allows 4" in proc.stdout + proc.stderr
    (run,) = instance.get_runs()
    starts = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.STEP_START))
    assert [r for r in starts if r.event_log_entry.run_id == run.run_id] == []


def test_an_in_process_bigquery_run_on_an_ephemeral_instance_refuses_before_its_merge(tmp_path, gcs_emulator):
    """The listing runs (its manifest is what the canonical step's checks compare with); both MERGEs refuse."""
    from google.cloud import storage

    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local"), **BIGQUERY_ENV})
    write_export(settings.local_source_dir, [START], SMALL)
    client = storage.Client(project=BIGQUERY_ENV["OPTIMIZELY_GCP_PROJECT"])
    if client.lookup_bucket(BIGQUERY_ENV["OPTIMIZELY_GCS_BUCKET"]) is None:
        client.create_bucket(BIGQUERY_ENV["OPTIMIZELY_GCS_BUCKET"])
    result = run_stages(settings, DagsterInstance.ephemeral(), ("source_files", "canonical"))
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert {e.step_key for e in failures} == {"decisions__canonical", "events__canonical"}
    for e in failures:
        text = e.step_failure_data.error.to_string()
        assert "refusing to start" in text and "cannot enforce pool limits" in text


def test_the_projects_instance_configuration_serialises_every_canonical_pool(tmp_path, monkeypatch):
    instance = project_instance(tmp_path / "dagster_home", monkeypatch)
    assert pool_problems(instance, [canonical_pool(t) for t in ExportType]) == []


def test_a_killed_runs_pool_slot_is_freed_and_the_next_run_of_that_pool_runs(tmp_path, monkeypatch):
    """SIGKILL a run inside its MERGE, holding the table's one slot; the next run reaps it and finishes."""
    instance = project_instance(tmp_path / "dagster_home", monkeypatch)
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, DAYS[:2], SMALL)
    env = {
        **os.environ,
        "OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local"),
        "OPTIMIZELY_START_DATE": START.isoformat(),
    }
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "optimizely_assets_tests.crash_run",
            str(tmp_path / "local"),
            DAYS[0].isoformat(),
            "merge",
            "persistent",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -9
    pool = canonical_pool(ExportType.DECISIONS)
    (dead_run,) = {c.run_id for c in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}

    selection = ",".join(f"decisions/{s}" for s in ("source_files", "staged_files", "raw_table", "canonical"))
    nxt = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "optimizely_assets.definitions",
            "--select",
            selection,
            "--partition",
            DAYS[1].isoformat(),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert nxt.returncode == 0, nxt.stderr[-2000:]
    assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
    assert dead_run not in {
        c.run_id for c in instance.event_log_storage.get_concurrency_info(pool).claimed_slots
    }


def test_an_in_process_bigquery_run_refuses_before_its_unit_inserts_too(tmp_path):
    """Units are insert-only like canonical: two runs inserting the same new pair on BigQuery would
    both insert it. Run alone in process, on an instance that cannot hold its pool, the step refuses
    before any BigQuery call."""
    from optimizely_assets.assets.keys import UNITS_KEY

    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local"), **BIGQUERY_ENV})
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    result = job.get_subset(asset_selection={UNITS_KEY}).execute_in_process(
        partition_key=START.isoformat(),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
    )
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "analysis__experiment_units"
    text = failure.step_failure_data.error.to_string()
    assert "refusing to start" in text and "cannot enforce pool limits" in text
