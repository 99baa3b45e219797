"""`load_history`: a row per type, day and run, after a demo, a re-run and a failed day."""

from __future__ import annotations

import datetime as dt
import os

from dagster import DagsterInstance

from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.history import LoadHistoryRow, trigger_of
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import local_settings, query, run_day

COLS = "run_id, export_type, export_date, source_files, footer_rows, rows_loaded, uuids_inserted, duplicates_skipped, outcome, error"


def history(settings) -> list[dict]:
    rows = query(settings, f"SELECT {COLS} FROM load_history ORDER BY ended_at")
    return [dict(zip(COLS.split(", "), r, strict=True)) for r in rows]


def test_a_demo_a_rerun_and_a_failed_day_each_leave_their_rows(tmp_path):
    settings = local_settings(tmp_path / "local")
    day2 = START + dt.timedelta(days=1)
    written = write_export(settings.local_source_dir, [START, day2], SMALL)
    instance = DagsterInstance.ephemeral()
    first = run_day(settings, START, instance)
    assert first.success
    rows = history(settings)
    assert {r["export_type"] for r in rows} == {"decisions", "events"} and len(rows) == 2
    for r in rows:
        w = next(w for w in written if w.export_type.value == r["export_type"] and w.day == START)
        assert r["run_id"] == first.run_id and r["outcome"] == "success" and r["error"] is None
        assert (r["source_files"], r["footer_rows"], r["rows_loaded"]) == (len(w.files), w.rows, w.rows)
        assert r["uuids_inserted"] == len(w.unique_uuids)
        assert r["duplicates_skipped"] == w.rows - len(w.unique_uuids)
    # What canonical holds agrees with what the history says was inserted.
    (decisions,) = query(settings, "SELECT count(*) FROM decisions WHERE export_date = ?", [START])[0]
    assert decisions == next(r for r in rows if r["export_type"] == "decisions")["uuids_inserted"]

    again = run_day(settings, START, instance)
    rerun = [r for r in history(settings) if r["run_id"] == again.run_id]
    assert len(rerun) == 2 and all(r["uuids_inserted"] == 0 and r["outcome"] == "success" for r in rerun)

    # Day 2's decisions: pages corrupted behind a valid footer; the raw load fails and rolls back.
    victim = sorted(
        next(w for w in written if w.day == day2 and w.export_type is ExportType.DECISIONS).files
    )[0]
    path = settings.local_source_dir / victim
    data = bytearray(path.read_bytes())
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:footer_start] = os.urandom(footer_start - 4)
    path.write_bytes(bytes(data))
    failed = run_day(settings, day2, instance)
    assert not failed.success
    mine = {r["export_type"]: r for r in history(settings) if r["run_id"] == failed.run_id}
    assert mine["decisions"]["outcome"] == "failed" and mine["decisions"]["rows_loaded"] is None
    assert str(path) in mine["decisions"]["error"]
    assert query(settings, "SELECT count(*) FROM decisions_raw WHERE export_date = ?", [day2])[0][0] == 0
    assert mine["events"]["outcome"] == "success"  # the other type of the day loaded on its own


def test_the_trigger_comes_from_the_runs_tags():
    assert trigger_of({"dagster/backfill": "abc", "dagster/partition": "2024-01-01"}) == "backfill"
    assert trigger_of({"dagster/sensor_name": "optimizely_success_sensor"}) == "sensor"
    assert trigger_of({"dagster/schedule_name": "optimizely_daily_schedule"}) == "schedule"
    assert trigger_of({}) == "manual"


def test_bigquery_writes_the_same_row(tmp_path):
    from optimizely_assets_tests.servers import start_bigquery_emulator
    from optimizely_assets_tests.test_bigquery_emulator import EmulatorWarehouse

    gcs = tmp_path / "gcs"
    gcs.mkdir()
    url, proc = start_bigquery_emulator(tmp_path, gcs)
    try:
        wh = EmulatorWarehouse(project="test-project", dataset="history", api_endpoint=url)
        wh.client.create_dataset("test-project.history", exists_ok=True)
        now = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
        row = LoadHistoryRow("run-1", "sensor", "events", START, 3, 1024, 30, now, error=None)
        wh.record_history(row.failed(RuntimeError("type=events date=2024-01-01: it's broken\nmore")))
        (got,) = wh.run_query(
            "SELECT run_id, run_trigger, export_date, source_files, outcome, error FROM "
            f"{wh.ref('load_history')}"
        )[0]
        assert got == (
            "run-1",
            "sensor",
            START,
            3,
            "failed",
            "RuntimeError: type=events date=2024-01-01: it's broken | more",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_load_history_is_an_asset_the_ui_shows_with_its_latest_loads(tmp_path):
    from dagster import AssetKey, DagsterInstance

    from optimizely_assets.definitions import build_definitions
    from optimizely_assets.demo.synthetic import write_export
    from optimizely_assets_tests.conftest import SMALL, START
    from optimizely_assets_tests.helpers import local_settings, run_day

    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)
    instance = DagsterInstance.ephemeral()
    assert run_day(settings, START, instance).success
    defs = build_definitions(settings)
    # What the UI's "Observe" runs: the implicit asset job, narrowed to the asset.
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={AssetKey("load_history")})
    result = job.execute_in_process(instance=instance)
    assert result.success
    (observation,) = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.metadata["dagster/row_count"].value == 2  # one success row per type
    table = observation.metadata["latest_loads"].value
    assert f"| {START} | decisions | manual |" in table and "| success |" in table
