"""Forget a visitor: every table, every staged file, every later load; the bytes too (DuckDB)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from optimizely_assets import cli
from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType, account_prefix, day_prefix
from optimizely_assets.privacy.scrub import matcher, scrub_file
from optimizely_assets.privacy.visitors import VisitorIdError, read_id_file, validate, visitor_hash
from optimizely_assets_tests.conftest import SMALL
from optimizely_assets_tests.helpers import all_clean, local_settings, query, run_day

START = dt.date(2024, 1, 1)
DAYS = date_range(START, 2)
# Long and distinctive, so compression cannot hide it from a byte search by chance.
VISITOR = "forget-me-7f3a9c1e5b2d4a6f8e0c1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d1f3a"
IP = "203.0.113.177-forget-me-ip"
AGENT = "Mozilla/5.0 (ForgetMeBrowser; 9f8e7d6c5b4a39281706f5e4d3c2b1a0) Gecko/20100101"
TABLES = ("decisions_raw", "decisions", "events_raw", "events", "experiment_units", "experiment_events")


def inject(source: Path, spec: ExportSpec, export_type: ExportType, day: dt.date, rows: int) -> int:
    """Give ``rows`` rows of each of the day's first two files of the type to the visitor."""
    prefix = source / day_prefix(account_prefix(spec.account_id), export_type, day)
    given = 0
    for path in sorted(prefix.rglob("*.parquet"))[:2]:
        table = pq.read_table(path)
        k = min(rows, table.num_rows)
        for name, value in (("visitor_id", VISITOR), ("user_ip", IP), ("user_agent", AGENT)):
            column = pa.array([value] * k + table.column(name).to_pylist()[k:], pa.string())
            table = table.set_column(table.schema.get_field_index(name), name, column)
        write_parquet(table, path, flavor=spec.flavor)
        given += k
    return given


def files_holding(root: Path, *needles: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n[:20]}" for n in needles if n.encode() in data]
    return found


def visitor_rows(settings) -> dict[str, int]:
    return {
        t: query(settings, f"SELECT count(*) FROM {t} WHERE visitor_id = ?", [VISITOR])[0][0] for t in TABLES
    }


def test_ids_are_checked_and_errors_name_the_place_never_the_id(tmp_path, capsys, monkeypatch):
    assert validate([" a ", "b", "a"], "--visitor-id") == ["a", "b"]
    with pytest.raises(VisitorIdError, match="--visitor-id: visitor id #2 is empty"):
        validate(["a", "  "], "--visitor-id")
    with pytest.raises(VisitorIdError, match="#1 holds a control character"):
        validate(["bad\tid"], "--visitor-id")
    ids = tmp_path / "ids.txt"
    ids.write_text("# requests of 2024-06\nuser_1\n\nuser_2\n")
    assert read_id_file(ids) == ["user_1", "user_2"]
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(tmp_path / "local"))
    assert cli.main(["forget", "--visitor-id", "secret-person", "--visitor-id", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "#2 is empty" in err and "secret-person" not in err
    assert cli.main(["forget", "--visitor-id", "nobody-here"]) == 2  # nothing loaded: one line
    assert "nothing is loaded under" in capsys.readouterr().err
    # A visitor the warehouse never saw: 0 rows everywhere, nothing fails.
    from optimizely_assets.privacy.tables import PrivacyTables
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

    (tmp_path / "local").mkdir(exist_ok=True)
    PrivacyTables(DuckDBWarehouse(path=str(tmp_path / "local" / "warehouse.duckdb"))).ensure()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for args in (["--dry-run"], []):
        assert cli.main(["forget", "--visitor-id", "nobody-here", *args]) == 0
        out = capsys.readouterr().out
        counted = [line.split() for line in out.splitlines() if " rows " in line]
        assert len(counted) == len(TABLES) and {c[1] for c in counted} == {"0"}, out


@pytest.mark.parametrize("flavor", ["pyarrow", "spark-int96"])
def test_a_scrubbed_file_keeps_every_other_row_exactly(tmp_path, flavor):
    source = tmp_path / "src"
    spec = ExportSpec(decisions_per_day=600, events_per_day=10, flavor=flavor)
    write_export(source, [START], spec, types=[ExportType.DECISIONS])
    inject(source, spec, ExportType.DECISIONS, START, 7)
    path = sorted(source.rglob("*.parquet"))[0]
    out = tmp_path / "scrubbed.parquet"
    done = scrub_file(path, out, matcher(hashes={visitor_hash("s", VISITOR)}, salt="s"), "experiment_id")
    before, after = pq.read_table(path), pq.read_table(out)
    kept = before.filter(pc.not_equal(before.column("visitor_id"), VISITOR))
    assert done.rows_removed == 7 and done.rows_left == after.num_rows == kept.num_rows
    assert sum(done.removed_by_key.values()) == 7
    for name in ("uuid", "visitor_id", "timestamp", "process_timestamp", "attributes"):
        got = (
            after.column(name).cast(kept.column(name).type)
            if name.endswith("timestamp")
            else after.column(name)
        )
        assert got.to_pylist() == kept.column(name).to_pylist(), name
    assert scrub_file(out, tmp_path / "again.parquet", matcher(ids={VISITOR}), "experiment_id") is None


def test_forget_removes_every_row_and_byte_and_later_loads_keep_them_out(tmp_path, monkeypatch, capsys):
    local = tmp_path / "local"
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(local))
    monkeypatch.setenv("OPTIMIZELY_START_DATE", START.isoformat())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    settings = local_settings(local)
    write_export(settings.local_source_dir, DAYS, SMALL)
    injected = {
        (t, d): inject(settings.local_source_dir, SMALL, t, d, 40 if t is ExportType.EVENTS else 3)
        for t in ExportType
        for d in DAYS
    }
    instance = DagsterInstance.get()
    for day in DAYS:
        assert all_clean(run_day(settings, day, instance))
    present = visitor_rows(settings)
    assert present["decisions_raw"] == 12 and present["events_raw"] == 160
    assert all(present[t] > 0 for t in TABLES)
    staging = settings.local_staging_dir
    db = [settings.duckdb_path, Path(f"{settings.duckdb_path}.wal")]
    # The search finds them before: what it misses after is gone, not hidden.
    assert files_holding(staging, VISITOR, IP, AGENT)
    assert any(VISITOR.encode() in p.read_bytes() for p in db if p.exists())
    units = dict(
        query(
            settings,
            "SELECT experiment_id || '/' || variation_id, units FROM experiment_results "
            "WHERE event_name IS NOT DISTINCT FROM (SELECT min(event_name) FROM experiment_results)",
        )
    )
    mine = dict(
        query(
            settings,
            "SELECT experiment_id || '/' || variation_id, count(*) FROM experiment_units "
            "WHERE visitor_id = ? AND NOT is_holdback GROUP BY 1",
            [VISITOR],
        )
    )

    assert cli.main(["forget", "--visitor-id", VISITOR, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "nothing was changed" in dry and f"{present['events']:>10,} rows would be deleted" in dry
    assert visitor_rows(settings) == present
    assert cli.main(["forget", "--visitor-id", VISITOR, "--visitor-id", "nobody-of-this-name"]) == 0
    out = capsys.readouterr().out
    assert f"{present['events_raw']:,} rows deleted" in out and "staged files rewritten or deleted" in out
    assert visitor_rows(settings) == dict.fromkeys(TABLES, 0)
    assert files_holding(staging, VISITOR, IP, AGENT) == []
    assert [
        p.name for p in db if p.exists() and any(n.encode() in p.read_bytes() for n in (VISITOR, IP, AGENT))
    ] == []
    # Results changed by exactly that visitor's units; its hash, never its id, is kept.
    after = dict(
        query(
            settings,
            "SELECT experiment_id || '/' || variation_id, units FROM experiment_results "
            "WHERE event_name IS NOT DISTINCT FROM (SELECT min(event_name) FROM experiment_results)",
        )
    )
    assert after == {k: n - mine.get(k, 0) for k, n in units.items()}
    salt = (local / "forget_salt").read_text().strip()
    ((outcome, rows, left, hashed),) = query(
        settings,
        "SELECT outcome, rows_removed, rows_left, visitor_hash FROM deletion_log WHERE visitor_hash = ?",
        [visitor_hash(salt, VISITOR)],
    )
    assert outcome == "ok" and left == 0 and json.loads(rows)["events"] == present["events"] and hashed
    assert query(settings, "SELECT count(*) FROM deletion_requests")[0][0] == 0
    assert query(settings, "SELECT count(*) FROM forgotten_visitors")[0][0] == 2  # the unknown one too
    # Nothing of the visitor or the salt in Dagster's event log.
    logged = json.dumps([str(e) for r in instance.get_runs() for e in instance.all_logs(r.run_id)])
    assert VISITOR not in logged and salt not in logged

    # Days re-run: the staging scrubs the copies, the visitor stays out, every check passes exactly.
    for day in reversed(DAYS):
        # A fresh copy from the source, as after Optimizely re-delivers the day.
        for f in (staging).rglob("*.parquet"):
            f.unlink()
        result = run_day(settings, day, instance)
        assert all_clean(result), {k: v for k, v in result.get_asset_check_evaluations()}
        for export_type in ExportType:
            (check,) = [
                e
                for e in result.get_asset_check_evaluations()
                if e.check_name == "rows_match_source_footers" and e.asset_key.path[0] == export_type.value
            ]
            assert check.metadata["suppressed_rows"].value == injected[(export_type, day)]
    assert visitor_rows(settings) == dict.fromkeys(TABLES, 0)
    assert files_holding(staging, VISITOR, IP, AGENT) == []


def test_requests_a_team_queues_are_processed_by_the_job_and_a_failed_one_resumes(tmp_path):
    from optimizely_assets.definitions import FORGET_JOB, build_definitions
    from optimizely_assets.instance import atomic_slot_claims
    from optimizely_assets.privacy.tables import PrivacyTables
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, DAYS[:1], SMALL)
    for t in ExportType:
        inject(settings.local_source_dir, SMALL, t, START, 5)
    instance = atomic_slot_claims(DagsterInstance.ephemeral())
    assert all_clean(run_day(settings, START, instance))
    tables = PrivacyTables(DuckDBWarehouse(path=str(settings.duckdb_path)))
    tables.ensure()
    # A team's system writes the request rows itself.
    tables.execute([f"INSERT INTO deletion_requests (visitor_id, requested_at) VALUES ('{VISITOR}', now())"])
    # A staged file it cannot read (a storage fault): the request fails, naming the day.
    broken = sorted(settings.local_staging_dir.rglob("type=events/**/*.parquet"))[0]
    kept = broken.read_bytes()
    broken.unlink()  # a new file, not a write through the hard link to the source
    broken.write_bytes(b"not parquet")
    job = build_definitions(settings).resolve_job_def(FORGET_JOB)
    failed = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    ((outcome, error),) = query(settings, "SELECT outcome, error FROM deletion_log")
    assert outcome == "failed" and f"staged files of events {START}" in error and VISITOR not in error
    assert query(settings, "SELECT count(*) FROM deletion_requests WHERE request_id IS NOT NULL")[0][0] == 1
    left = visitor_rows(settings)
    assert left["decisions"] == 0  # what it could reach is gone already ...
    assert left["events_raw"] > 0  # ... but raw keeps the day it could not clean, for the re-run to find

    broken.unlink()
    broken.write_bytes(kept)
    done = job.execute_in_process(instance=instance, raise_on_error=False)
    assert done.success
    (check,) = done.get_asset_check_evaluations()
    assert check.check_name == "requests_completed" and check.passed
    assert visitor_rows(settings) == dict.fromkeys(TABLES, 0)
    assert query(settings, "SELECT count(*) FROM deletion_requests")[0][0] == 0
    assert [r[0] for r in query(settings, "SELECT outcome FROM deletion_log ORDER BY finished_at")] == [
        "failed",
        "ok",
    ]
    # A day re-run afterwards passes every check; the visitor does not come back.
    assert all_clean(run_day(settings, START, instance))
    assert visitor_rows(settings) == dict.fromkeys(TABLES, 0)


def test_an_id_that_reads_like_sql_is_queued_and_forgotten_as_the_text_it_is(tmp_path):
    """Ids are personal data of any shape: one starting like a SQL literal, or holding quotes, is
    stored as its own text (a rendering that passed "TIMESTAMP ..." through would queue another id)."""
    from optimizely_assets.privacy.tables import PrivacyTables
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

    tables = PrivacyTables(DuckDBWarehouse(path=str(tmp_path / "w.duckdb")))
    tables.ensure()
    odd = ["TIMESTAMP '2024-01-01 00:00:00'", "o'brien \\ co", "1234"]
    tables.add_requests(odd, dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc))
    assert sorted(tables.ids_of(tables.claim())) == sorted(odd)
