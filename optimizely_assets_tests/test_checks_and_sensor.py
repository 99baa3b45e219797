"""Checks that fail name the day and what is missing; the `_SUCCESS` sensor; the CLI targets."""

from __future__ import annotations

import datetime as dt
import json
import os

import duckdb
import pytest
from dagster import DagsterInstance, build_sensor_context

from optimizely_assets import runs
from optimizely_assets.automation import build_success_sensor
from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets.e3.layout import ExportType, account_prefix, success_key
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import local_settings, run_day

pytestmark = pytest.mark.checks

DAYS = date_range(START, 2)


@pytest.fixture
def loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, DAYS, SMALL)
    instance = DagsterInstance.get()
    for day in DAYS:
        assert run_day(settings, day, instance).success
    return settings


def test_checks_cli_passes_on_a_good_load_and_names_day_and_experiment_when_rows_go_missing(loaded, capsys):
    settings = loaded
    rows = runs.run_checks(settings, DAYS)
    assert rows and all(r["passed"] for r in rows)

    with duckdb.connect(str(settings.duckdb_path)) as con:
        (victim,) = con.execute(
            "SELECT experiment_id FROM decisions_raw WHERE export_date = ? ORDER BY 1 LIMIT 1", [DAYS[1]]
        ).fetchone()
        con.execute(
            "DELETE FROM decisions_raw WHERE export_date = ? AND experiment_id = ?", [DAYS[1], victim]
        )
        con.execute("DELETE FROM events WHERE export_date = ? AND event_name = 'purchase'", [DAYS[1]])

    rows = runs.run_checks(settings, DAYS)
    failed = {r["check"]: r for r in rows if not r["passed"]}
    assert set(failed) == {
        "decisions/raw_table:rows_match_source_footers",
        "decisions/canonical:every_source_experiment_in_warehouse",
        # canonical still holds the uuids raw lost: what a re-delivery without them would leave
        "decisions/canonical:canonical_day_within_raw_day",
        "events/canonical:every_source_event_in_warehouse",
    }
    assert all(r["day"] == DAYS[1].isoformat() for r in failed.values())
    assert victim in failed["decisions/canonical:every_source_experiment_in_warehouse"]["description"]
    assert "purchase" in failed["events/canonical:every_source_event_in_warehouse"]["description"]
    assert "2024-01-02" in failed["decisions/raw_table:rows_match_source_footers"]["description"]


def test_a_uuid_copied_into_another_days_canonical_partition_fails_no_duplicates_on_both_days(loaded):
    """The copy's uuid is not in the second day's raw rows: the check also reads canonical's own day."""
    settings = loaded
    with duckdb.connect(str(settings.duckdb_path)) as con:
        (uuid,) = con.execute(
            "SELECT uuid FROM decisions WHERE export_date = ? ORDER BY uuid LIMIT 1", [DAYS[0]]
        ).fetchone()
        con.execute(
            "INSERT INTO decisions SELECT * REPLACE (CAST(? AS DATE) AS export_date) FROM decisions "
            "WHERE uuid = ? AND export_date = ?",
            [DAYS[1], uuid, DAYS[0]],
        )
        assert con.execute(
            "SELECT count(*) FROM decisions_raw WHERE uuid = ? AND export_date = ?", [uuid, DAYS[1]]
        ).fetchone() == (0,)
    rows = runs.run_checks(settings, DAYS)
    failed = {(r["day"], r["check"]): r["description"] for r in rows if not r["passed"]}
    # ...and the second day's canonical holds a uuid its raw day lacks.
    within = (DAYS[1].isoformat(), "decisions/canonical:canonical_day_within_raw_day")
    assert set(failed) == {(d.isoformat(), "decisions/canonical:no_duplicate_uuids") for d in DAYS} | {within}
    assert all(uuid in text for text in failed.values())


def test_freshness_check_fails_when_the_day_was_rewritten_after_the_load(loaded):
    settings = loaded
    marker = settings.local_source_dir / success_key(
        account_prefix(SMALL.account_id), ExportType.EVENTS, DAYS[0]
    )
    os.utime(marker, (marker.stat().st_atime + 10, marker.stat().st_mtime + 10))
    rows = runs.run_checks(settings, [DAYS[0]])
    failed = [r for r in rows if not r["passed"]]
    assert [r["check"] for r in failed] == ["events/raw_table:fresh_after_success"]
    assert "re-run" in failed[0]["description"]


def test_sensor_starts_complete_days_once_and_again_when_a_late_file_lands(tmp_path):
    settings = local_settings(tmp_path / "local")
    days = date_range(START, 3)
    write_export(settings.local_source_dir, days[:2], SMALL)
    write_export(settings.local_source_dir, days[2:], SMALL, success=False)  # day 3 not complete yet
    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    from dagster import DailyPartitionsDefinition

    daily = DailyPartitionsDefinition(start_date=settings.start_date, end_date="2024-01-04")
    sensor = build_success_sensor(job, daily, lookback_days=3, today=lambda: dt.date(2024, 1, 3))
    source = LocalExportSource(root_dir=str(settings.local_source_dir), account_id=SMALL.account_id)

    first = sensor(build_sensor_context(cursor=None, resources={"source": source}))
    keys = sorted((r.partition_key, r.tags["optimizely/export_type"]) for r in first.run_requests)
    assert keys == [
        (d.isoformat(), t.value) for d in days[:2] for t in sorted(ExportType, key=lambda t: t.value)
    ]
    assert all(r.tags["optimizely/trigger"] == "new" for r in first.run_requests)
    assert {len(r.asset_selection) for r in first.run_requests} == {4}

    again = sensor(build_sensor_context(cursor=first.cursor, resources={"source": source}))
    assert again.run_requests == []

    # A late file in day 2 and day 3's marker appear.
    late = (
        settings.local_source_dir
        / "v1"
        / f"account_id={SMALL.account_id}"
        / "type=events"
        / "date=2024-01-02"
        / "event=late_event"
        / "part-00000-x.c000.snappy.parquet"
    )
    late.parent.mkdir(parents=True)
    late.write_bytes((next(settings.local_source_dir.rglob("*.parquet"))).read_bytes())
    (
        settings.local_source_dir
        / success_key(account_prefix(SMALL.account_id), ExportType.DECISIONS, days[2])
    ).write_bytes(b"")
    third = sensor(build_sensor_context(cursor=again.cursor, resources={"source": source}))
    got = sorted(
        (r.partition_key, r.tags["optimizely/export_type"], r.tags["optimizely/trigger"])
        for r in third.run_requests
    )
    assert got == [("2024-01-02", "events", "changed"), ("2024-01-03", "decisions", "new")]


def _sensor_over(settings, today: dt.date, end: str, **kw):
    from dagster import DailyPartitionsDefinition

    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    daily = DailyPartitionsDefinition(start_date=settings.start_date, end_date=end)
    source = LocalExportSource(root_dir=str(settings.local_source_dir), account_id=SMALL.account_id)
    sensor = build_success_sensor(job, daily, lookback_days=3, today=lambda: today, **kw)

    def tick(cursor):
        return sensor(build_sensor_context(cursor=cursor, resources={"source": source}))

    return tick


def _requested(result) -> list[tuple[str, str]]:
    return sorted((r.partition_key, r.tags["optimizely/export_type"]) for r in result.run_requests)


def test_after_a_five_day_outage_the_sensor_requests_every_day_it_missed(tmp_path):
    settings = local_settings(tmp_path / "local")
    days = date_range(START, 8)
    write_export(settings.local_source_dir, days[:3], SMALL)
    before = _sensor_over(settings, days[2], "2024-01-04")(None)
    assert {d for d, _ in _requested(before)} == {d.isoformat() for d in days[:3]}
    # The sensor is down while days 4..8 complete; it comes back on day 8.
    write_export(settings.local_source_dir, days[3:], SMALL)
    after = _sensor_over(settings, days[7], "2024-01-09")(before.cursor)
    assert _requested(after) == [(d.isoformat(), t.value) for d in days[3:] for t in ExportType]
    assert _sensor_over(settings, days[7], "2024-01-09")(after.cursor).run_requests == []


def test_a_day_that_never_completes_is_reported_and_does_not_hold_back_later_days(tmp_path):
    settings = local_settings(tmp_path / "local")
    days = date_range(START, 10)
    write_export(settings.local_source_dir, [d for d in days if d != days[3]], SMALL)
    write_export(settings.local_source_dir, [days[3]], SMALL, success=False)  # day 4: no _SUCCESS, ever
    first = _sensor_over(settings, days[2], "2024-01-04")(None)
    result = _sensor_over(settings, days[9], "2024-01-11")(first.cursor)
    requested = {d for d, _ in _requested(result)}
    assert days[3].isoformat() not in requested
    assert {d.isoformat() for d in days[4:]} <= requested
    cursor = json.loads(result.cursor)
    assert cursor["decisions"]["hwm"] == days[9].isoformat()
    assert len(cursor["decisions"]["seen"]) <= 4  # the cursor stays the size of the re-check window


def test_the_previous_cursor_format_is_read_as_a_high_water_mark():
    from optimizely_assets.loading.success_watch import load_cursor

    cursor = load_cursor(json.dumps({"events": {"2024-01-04": "a", "2024-01-05": "b"}}))
    assert cursor[ExportType.EVENTS].hwm == dt.date(2024, 1, 5)
    assert cursor[ExportType.DECISIONS].hwm is None


def _export_missing_day_four(settings, n_days: int) -> tuple[list[dt.date], dt.date]:
    """n days exported; day 4 without its _SUCCESS (its files there, the marker not yet)."""
    days = date_range(START, n_days)
    write_export(settings.local_source_dir, [d for d in days if d != days[3]], SMALL)
    write_export(settings.local_source_dir, [days[3]], SMALL, success=False)
    return days, days[3]


def _tick_on(settings, today: dt.date, cursor, **kw):
    """One sensor tick on ``today``, its partitions ending there."""
    return _sensor_over(settings, today, (today + dt.timedelta(days=1)).isoformat(), **kw)(cursor)


@pytest.mark.parametrize("late_days", range(1, 11))
def test_a_day_whose_success_comes_1_to_10_days_late_is_started_once_when_it_comes(tmp_path, late_days):
    settings = local_settings(tmp_path / "local")
    days, missing = _export_missing_day_four(settings, 16)
    cursor, started = None, []
    for today in days[2:]:
        if today == missing + dt.timedelta(days=late_days):
            write_export(settings.local_source_dir, [missing], SMALL)  # Optimizely delivers it now
        result = _tick_on(settings, today, cursor)
        cursor = result.cursor
        started += [
            (r.partition_key, r.tags["optimizely/trigger"])
            for r in result.run_requests
            if r.partition_key == missing.isoformat()
        ]
    trigger = "new" if late_days <= 3 else "late"  # not yet passed over (re-check window): simply new
    assert started == [(missing.isoformat(), trigger)] * len(ExportType)
    assert json.loads(cursor)["decisions"]["waiting"] == []


def test_a_day_still_without_success_past_the_bound_fails_its_check_naming_the_day(tmp_path):
    from optimizely_assets.automation import MARKER_CHECK

    settings = local_settings(tmp_path / "local")
    days, missing = _export_missing_day_four(settings, 12)
    cursor, events = None, []
    for today in days[2:]:
        result = _tick_on(settings, today, cursor, bound_days=5)
        cursor = result.cursor
        events += [(today, e) for e in result.asset_events]
        assert missing.isoformat() not in {r.partition_key for r in result.run_requests}
    assert [(today, e.partition, e.check_name, e.passed) for today, e in events] == [
        (missing + dt.timedelta(days=6), missing.isoformat(), MARKER_CHECK, False)
    ] * len(ExportType)
    assert f"date={missing}: no _SUCCESS within the 5-day dedup horizon" in events[0][1].description
    assert json.loads(cursor)["events"]["waiting"] == []
