"""The command line speaks in one line, and the demo never deletes what it did not create."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from optimizely_assets import cli
from optimizely_assets.demo.synthetic import ExportSpec
from optimizely_assets.e3.layout import ExportType, account_prefix, success_key

SMALL_ARGS = ["--start", "2024-01-01", "--days", "1", "--decisions-per-day", "200", "--events-per-day", "200"]


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("OPTIMIZELY_START_DATE", "2024-01-01")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path / "local"


def test_the_demo_refuses_a_directory_it_did_not_create_and_leaves_it_alone(local, capsys):
    local.mkdir()
    (local / "thesis.docx").write_text("years of work")
    assert cli.main(["demo", *SMALL_ARGS]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "did not create" in err and str(local) in err
    assert sorted(p.name for p in local.iterdir()) == ["thesis.docx"]


def test_a_second_demo_replaces_its_data_but_keeps_the_dagster_home(local, capsys):
    assert cli.main(["demo", *SMALL_ARGS]) == 0
    history = local / "dagster_home" / "keep-me"
    history.write_text("runs of a live `make dev`")
    assert cli.main(["demo", *SMALL_ARGS]) == 0
    assert history.exists() and (local / "warehouse.duckdb").exists()
    assert "7/7 passed" in capsys.readouterr().out


def test_generate_keeps_days_already_there_and_their_success_markers(local, capsys):
    assert cli.main(["generate", *SMALL_ARGS]) == 0
    marker = (
        local / "source" / success_key(account_prefix(ExportSpec.account_id), ExportType.EVENTS, "2024-01-01")
    )
    before = marker.stat().st_mtime_ns
    assert cli.main(["generate", "--start", "2024-01-01", "--days", "2"]) == 0
    assert marker.stat().st_mtime_ns == before
    assert "kept 1 day(s)" in capsys.readouterr().out


def test_checks_in_an_empty_directory_say_what_to_do_and_create_nothing(local, capsys):
    local.mkdir()
    assert cli.main(["checks"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "optimizely-assets demo" in err
    assert list(local.iterdir()) == []


def test_checks_on_a_day_never_loaded_fail_in_one_line(local, capsys):
    assert cli.main(["demo", *SMALL_ARGS]) == 0
    capsys.readouterr()
    assert cli.main(["checks", "--start", "2024-03-01", "--days", "1"]) == 1
    out = capsys.readouterr().out
    (run_line,) = [line for line in out.splitlines() if "(run)" in line]
    assert run_line.startswith("FAIL") and "never loaded" in run_line
    assert "Traceback" not in out


@pytest.mark.parametrize("days", ["0", "-1", "two"])
def test_non_positive_day_counts_are_refused(days, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["checks", "--days", days])
    assert exit_.value.code == 2 and "--days" in capsys.readouterr().err


def test_bad_settings_print_one_line_naming_the_variable(local, monkeypatch, capsys):
    monkeypatch.setenv("OPTIMIZELY_START_DATE", "2024-31-01")
    assert cli.main(["checks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OPTIMIZELY_START_DATE" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "command", ["demo", "generate", "checks", "preflight", "results", "report", "forget", "plan-backfill"]
)
def test_every_option_has_help_with_its_default(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out.split("options:", 1)[1]
    options = re.findall(r"^\s+(--[a-z-]+)", text, re.M)
    assert options or command == "preflight"
    for opt in options:
        block = text.split(opt, 1)[1].split("\n  -", 1)[0]
        assert "default" in block, (opt, block)


def test_the_demo_loads_the_days_ending_yesterday_inside_its_partitions(local, monkeypatch, capsys):
    import datetime as dt

    monkeypatch.delenv("OPTIMIZELY_START_DATE")
    assert cli.main(["demo", "--days", "2", "--decisions-per-day", "200", "--events-per-day", "200"]) == 0
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    out = capsys.readouterr().out
    assert yesterday.isoformat() in out and (yesterday - dt.timedelta(days=1)).isoformat() in out
    assert "7/7 passed" in out


def test_generate_completes_a_half_written_day_without_doubling_the_complete_type(local):
    """A day with events complete but decisions not (an interrupted generate): only decisions are written."""
    from optimizely_assets.demo.synthetic import write_export

    source = local / "source"
    write_export(source, [dt.date(2024, 1, 2)], ExportSpec(), types=[ExportType.EVENTS])
    day2_events = sorted(p.name for p in source.rglob("type=events/date=2024-01-02/**/*.parquet"))
    assert cli.main(["generate", "--start", "2024-01-01", "--days", "2"]) == 0
    assert sorted(p.name for p in source.rglob("type=events/date=2024-01-02/**/*.parquet")) == day2_events
    for day in ("2024-01-01", "2024-01-02"):
        assert (
            source / success_key(account_prefix(ExportSpec.account_id), ExportType.DECISIONS, day)
        ).exists()


def test_checks_print_a_warning_as_warn_and_exit_0_when_only_warnings_fail(local, capsys):
    """The demo's SRM experiment trips its (warn) check: the day is still clean. A day of 12,000
    decisions: ~1,000 units in the 60/40 experiment, p ~1e-10 (at 4,000 the test could flip)."""
    assert cli.main(["demo", "--start", "2024-01-01", "--days", "1", "--decisions-per-day", "12000"]) == 0
    capsys.readouterr()
    assert cli.main(["checks", "--start", "2024-01-01", "--days", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (warn,) = [line for line in lines if line.startswith("WARN")]
    assert "sample_ratio_mismatch" in warn
    assert not [line for line in lines if line.startswith("FAIL")]


def test_a_check_that_did_not_run_names_the_cause_not_dagsters_wrapper(local, monkeypatch, capsys):
    assert cli.main(["demo", *SMALL_ARGS]) == 0
    capsys.readouterr()
    from optimizely_assets_tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name, value in {
        "OPTIMIZELY_PAT": "pat-secret-4f1c",
        "OPTIMIZELY_API_URL": dead,
        "OPTIMIZELY_REST_API_URL": f"{dead}/v2",
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["checks", "--start", "2024-01-01", "--days", "1"]) == 1
    out = capsys.readouterr().out
    (run_line,) = [line for line in out.splitlines() if "(run)" in line]
    assert "CredentialsError" in run_line and "could not be reached" in run_line
    assert "DagsterExecutionStepExecutionError" not in out and "pat-secret-4f1c" not in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["demo", "--start", "2023-12-30", "--days", "2"], "before OPTIMIZELY_START_DATE (2024-01-01)"),
        (["checks", "--start", "2023-12-31", "--days", "1"], "before OPTIMIZELY_START_DATE (2024-01-01)"),
        (["checks", "--start", "2099-01-01", "--days", "1"], "after today"),
    ],
)
def test_days_outside_the_partitions_are_one_line(local, capsys, args, says):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err and "Partition" not in err


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_a_local_dir_that_is_a_file_is_one_line_naming_the_variable(tmp_path, monkeypatch, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(blocker if where == "file" else blocker / "local"))
    monkeypatch.setenv("OPTIMIZELY_START_DATE", "2024-01-01")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli.main(["demo", *SMALL_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OPTIMIZELY_LOCAL_DIR" in err and "is a file" in err
    assert blocker.read_text() == "not a directory"
