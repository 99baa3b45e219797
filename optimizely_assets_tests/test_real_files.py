"""Files as Spark writes them and days as they really change: no silent corruption, no lost data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import partition_table, write_export
from optimizely_assets.e3.layout import ExportType, account_prefix, day_prefix
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.settings import Settings
from optimizely_assets_tests.conftest import SMALL, START, rows_of
from optimizely_assets_tests.helpers import (
    all_clean,
    checks_of,
    local_settings,
    materialized_of,
    query,
    run_day,
)

pytestmark = pytest.mark.checks
REPO = Path(__file__).resolve().parent.parent


def _source_timestamps(root: Path) -> set[tuple[str, int, int]]:
    """(uuid, timestamp ms, process_timestamp ms) as the files mean them: UTC."""
    out = set()
    for path in root.rglob("*.parquet"):
        if "type=decisions" not in str(path):
            continue
        t = pq.read_table(path, columns=["uuid", "timestamp", "process_timestamp"])
        ms = [
            pc.cast(pc.cast(t[c], pa.timestamp("ms")), pa.int64()).to_pylist()
            for c in ("timestamp", "process_timestamp")
        ]
        out.update(zip(t["uuid"].to_pylist(), *ms, strict=True))
    return out


@pytest.mark.parametrize("flavor", ["spark-int96", "spark-millis"])
def test_spark_timestamps_load_as_utc_under_a_non_utc_time_zone(tmp_path, flavor):
    local = tmp_path / "local"
    settings = local_settings(local)
    write_export(settings.local_source_dir, [START], replace(SMALL, flavor=flavor))
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "TZ": "America/Los_Angeles", "DAGSTER_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "optimizely_assets_tests.run_one_day", str(local), START.isoformat()],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(
        query(settings, 'SELECT uuid, epoch_ms("timestamp"), epoch_ms(process_timestamp) FROM decisions_raw')
    )
    assert loaded == _source_timestamps(settings.local_source_dir)
    # every row was received on the export day, in UTC: none moved to the next day
    (outside,) = query(
        settings, "SELECT count(*) FROM decisions_raw WHERE CAST(process_timestamp AS DATE) <> ?", [START]
    )[0]
    assert outside == 0


def test_a_column_value_never_comes_from_the_path(tmp_path):
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)
    # A real sample file's own account, staged under this account's folder.
    table = partition_table(
        ExportType.DECISIONS, "18786493712", 50, START, replace(SMALL, account_id="596780373")
    )
    prefix = day_prefix(account_prefix(SMALL.account_id), ExportType.DECISIONS, START)
    write_parquet(
        table,
        settings.local_source_dir / prefix / "experiment=18786493712" / "part-00001-x.c000.snappy.parquet",
    )
    result = run_day(settings, START, DagsterInstance.ephemeral())
    assert result.success and all_clean(result)
    accounts = dict(query(settings, "SELECT account_id, count(*) FROM decisions_raw GROUP BY 1"))
    assert accounts["596780373"] == 50 and accounts[SMALL.account_id] > 0


def test_a_path_that_does_not_decode_to_utf8_loads_and_passes_its_checks(tmp_path):
    settings = local_settings(tmp_path / "local")
    root = settings.local_source_dir
    write_export(root, [START], SMALL, types=[ExportType.EVENTS])
    table = partition_table(ExportType.EVENTS, "café", 40, START)
    prefix = day_prefix(account_prefix(SMALL.account_id), ExportType.EVENTS, START)
    write_parquet(table, root / prefix / "event=caf%E9" / "part-00000-x.c000.snappy.parquet")
    loader = LoaderConfig(require_success=False)
    result = run_day(settings, START, DagsterInstance.ephemeral(), resources={"loader": loader})
    events = {k: v for k, v in checks_of(result).items() if k.startswith("events/")}
    assert events and all(events.values()), events
    assert query(settings, "SELECT count(*) FROM events WHERE event_name = 'café'")[0][0] == 40


@pytest.fixture
def loaded(tmp_path):
    settings = local_settings(tmp_path / "local")
    written = write_export(settings.local_source_dir, [START], SMALL)
    instance = DagsterInstance.ephemeral()
    assert run_day(settings, START, instance).success
    return settings, written, instance


def test_a_file_rewritten_under_an_unchanged_success_marker_fails_freshness(loaded, tmp_path, monkeypatch):
    from optimizely_assets import runs

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    settings, written, _ = loaded
    w = rows_of(written, ExportType.DECISIONS, START)
    victim = sorted(w.files)[0]
    marker = (
        settings.local_source_dir
        / day_prefix(account_prefix(SMALL.account_id), ExportType.DECISIONS, START)
        / "_SUCCESS"
    )
    before = marker.stat().st_mtime_ns
    path = settings.local_source_dir / victim
    write_parquet(pq.read_table(path).slice(0, 10), path)
    assert marker.stat().st_mtime_ns == before
    rows = {r["check"]: r for r in runs.run_checks(settings, [START])}
    fresh = rows["decisions/raw_table:fresh_after_success"]
    assert (
        not fresh["passed"]
        and "rewritten" in fresh["description"]
        and "re-run the day" in fresh["description"]
    )


def test_an_empty_day_does_not_erase_a_loaded_day_unless_allowed(loaded):
    settings, written, instance = loaded
    w = rows_of(written, ExportType.DECISIONS, START)
    for key in w.files:
        (settings.local_source_dir / key).unlink()
    result = run_day(settings, START, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "decisions__raw_table")
    text = failure.step_failure_data.error.to_string()
    assert "date=2024-01-01" in text and f"holds {w.rows:,} rows" in text and "allow_empty_day" in text
    assert query(settings, "SELECT count(*) FROM decisions_raw")[0][0] == w.rows
    allowed = run_day(settings, START, instance, resources={"loader": LoaderConfig(allow_empty_day=True)})
    assert allowed.success
    assert query(settings, "SELECT count(*) FROM decisions_raw")[0][0] == 0


def test_corrupt_pages_behind_a_valid_footer_fail_the_load_naming_the_source_key(tmp_path):
    settings = local_settings(tmp_path / "local")
    written = write_export(settings.local_source_dir, [START], SMALL, types=[ExportType.DECISIONS])
    victim = sorted(written[0].files)[1]
    path = settings.local_source_dir / victim
    data = bytearray(path.read_bytes())
    footer_start = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:footer_start] = os.urandom(footer_start - 4)  # pages garbage, footer intact
    path.write_bytes(bytes(data))
    result = run_day(
        settings,
        START,
        DagsterInstance.ephemeral(),
        resources={"loader": LoaderConfig(require_success=False)},
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "decisions__raw_table"
    assert str(path) in failure.step_failure_data.error.to_string()
    assert query(settings, "SELECT count(*) FROM decisions_raw")[0][0] == 0


def test_ten_thousand_small_files_load_in_one_day_within_the_memory_limit(tmp_path):
    settings = local_settings(tmp_path / "local")
    prefix = day_prefix(account_prefix(SMALL.account_id), ExportType.DECISIONS, START)
    table = partition_table(ExportType.DECISIONS, "18786493712", 3, START)
    day_dir = settings.local_source_dir / prefix
    files = 10_001
    for i in range(files):
        t = table.set_column(0, "uuid", pa.array([f"{i}-{j}" for j in range(3)]))
        write_parquet(
            t, day_dir / f"experiment={18786493712 + i % 50}" / f"part-{i:05d}-x.c000.snappy.parquet"
        )
    (day_dir / "_SUCCESS").write_bytes(b"")
    result = run_day(settings, START, DagsterInstance.ephemeral())
    decisions = {k: v for k, v in checks_of(result).items() if k.startswith("decisions/")}
    assert decisions and all(decisions.values()), decisions
    assert query(settings, "SELECT count(*), count(DISTINCT uuid) FROM decisions")[0] == (
        3 * files,
        3 * files,
    )


def test_folders_with_glob_characters_load_exactly_their_footer_rows(tmp_path):
    settings = local_settings(tmp_path / "local")
    root = settings.local_source_dir
    write_export(root, [START], SMALL, types=[ExportType.EVENTS])
    prefix = day_prefix(account_prefix(SMALL.account_id), ExportType.EVENTS, START)
    for i, folder in enumerate(["event=a*", "event=a?", "event=[ab]", "event={a,b}", "event=a"]):
        table = partition_table(ExportType.EVENTS, folder[6:], 100 + i, START, seed=i)
        write_parquet(table, root / prefix / folder / "part-00000-x.c000.snappy.parquet")
    result = run_day(
        settings,
        START,
        DagsterInstance.ephemeral(),
        resources={"loader": LoaderConfig(require_success=False)},
    )
    events = {k: v for k, v in checks_of(result).items() if k.startswith("events/")}
    assert events and all(events.values()), events
    meta = result.asset_materializations_for_node("events__source_files")[0].metadata
    assert query(settings, "SELECT count(*) FROM events_raw")[0][0] == meta["dagster/row_count"].value


def test_a_column_optimizely_adds_reaches_raw_and_canonical_on_duckdb(tmp_path):
    settings = local_settings(tmp_path / "local")
    root = settings.local_source_dir
    write_export(root, [START], SMALL, types=[ExportType.DECISIONS])
    table = partition_table(ExportType.DECISIONS, "18786493712", 30, START, seed=9)
    table = table.append_column("client_platform", pa.array(["ios"] * 30))
    prefix = day_prefix(account_prefix(SMALL.account_id), ExportType.DECISIONS, START)
    write_parquet(table, root / prefix / "experiment=18786493712" / "part-00009-x.c000.snappy.parquet")
    result = run_day(
        settings,
        START,
        DagsterInstance.ephemeral(),
        resources={"loader": LoaderConfig(require_success=False)},
    )
    assert result.success
    assert query(settings, "SELECT count(*) FROM decisions_raw WHERE client_platform = 'ios'")[0][0] == 30
    assert query(settings, "SELECT count(*) FROM decisions WHERE client_platform = 'ios'")[0][0] == 30
    raw_meta = result.asset_materializations_for_node("decisions__raw_table")[0].metadata
    canonical_meta = result.asset_materializations_for_node("decisions__canonical")[0].metadata
    assert raw_meta["added_columns"].value == "client_platform" == canonical_meta["added_columns"].value


def _decisions_day(tmp_path: Path) -> Settings:
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL, types=[ExportType.DECISIONS])
    return settings


def _run_without_marker(settings: Settings, staging: object) -> ExecuteInProcessResult:
    """The day on this staging, not waiting for _SUCCESS: the tests rewrite files under it."""
    return run_day(
        settings,
        START,
        DagsterInstance.ephemeral(),
        resources={"staging": staging, "loader": LoaderConfig(require_success=False)},
    )


def test_a_day_rewritten_while_it_loads_fails_the_run_not_only_a_check(tmp_path):
    """Optimizely rewrites the day's marker while the files are being staged: the run is not a success."""
    from optimizely_assets.resources.staging import LocalStaging

    settings = _decisions_day(tmp_path)
    marker = (
        settings.local_source_dir
        / day_prefix(account_prefix(SMALL.account_id), ExportType.DECISIONS, START)
        / "_SUCCESS"
    )

    class RewrittenMidCopy(LocalStaging):
        def link(self, key, path, size):  # a local source is staged by hard link
            os.utime(marker, ns=(marker.stat().st_atime_ns, marker.stat().st_mtime_ns + 10**9))
            return super().link(key, path, size)

    staging = RewrittenMidCopy(root_dir=str(settings.local_staging_dir))
    result = _run_without_marker(settings, staging)
    assert not result.success
    assert checks_of(result)["decisions/raw_table:fresh_after_success"] is False
    # The check is blocking: the day that no longer matches its source never reaches canonical.
    materialized = materialized_of(result)
    assert "decisions/raw_table" in materialized and "decisions/canonical" not in materialized


def test_a_source_file_rewritten_in_place_after_it_was_linked_fails_the_run(tmp_path):
    """A local source is staged by hard link, so a file rewritten in place (same inode, same row
    count, other values) after staging reaches the load with its new bytes. The row check cannot
    see it; the freshness check does (the file's mtime is its ETag) and blocks canonical."""
    from optimizely_assets.resources.staging import LocalStaging

    settings = _decisions_day(tmp_path)
    rewritten: list[Path] = []

    class RewrittenAfterLink(LocalStaging):
        def link(self, key, path, size):
            linked = super().link(key, path, size)
            if linked and not rewritten:
                inode = os.stat(path).st_ino
                table = pq.read_table(path)
                i = table.column_names.index("user_ip")
                write_parquet(
                    table.set_column(i, "user_ip", pa.array(["rewritten"] * table.num_rows)), Path(path)
                )
                assert os.stat(path).st_ino == inode  # in place: the staged link sees it
                rewritten.append(Path(path))
            return linked

    staging = RewrittenAfterLink(root_dir=str(settings.local_staging_dir))
    result = _run_without_marker(settings, staging)
    assert rewritten and not result.success
    checks = checks_of(result)
    assert checks["decisions/raw_table:rows_match_source_footers"] is True
    assert checks["decisions/raw_table:fresh_after_success"] is False
    materialized = materialized_of(result)
    assert "decisions/canonical" not in materialized
    assert query(settings, "SELECT count(*) FROM decisions_raw WHERE user_ip = 'rewritten'")[0][0] > 0


def test_a_staged_file_that_lost_rows_fails_the_row_check_in_the_loads_own_step(tmp_path):
    """The row check counts what the load wrote, not what the manifest promised: it fails, and blocks."""
    from optimizely_assets.resources.staging import LocalStaging

    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)

    class LosesRows(LocalStaging):
        def link(self, key, path, size):
            return False  # copy, so that put runs

        def put(self, key, stream, size, source_etag, source_key):
            super().put(key, stream, size, source_etag, source_key)
            table = pq.read_table(self._path(key))
            pq.write_table(table.slice(0, table.num_rows - 1), self._path(key))

    staging = LosesRows(root_dir=str(settings.local_staging_dir))
    result = run_day(settings, START, DagsterInstance.ephemeral(), resources={"staging": staging})
    assert not result.success
    row_checks = {
        e.asset_key.path[0]: e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "rows_match_source_footers"
    }
    assert not row_checks["decisions"].passed and not row_checks["events"].passed
    row_check = row_checks["decisions"]
    source_rows = row_check.metadata["source_rows"].value
    assert row_check.metadata["raw_rows"].value < source_rows
    # Evaluated inside the raw table's step, after its materialization; the MERGE never ran.
    steps = {
        e.step_key
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "rows_match_source_footers"
    }
    assert steps == {"decisions__raw_table", "events__raw_table"}
    materialized = materialized_of(result)
    assert {"decisions/raw_table", "events/raw_table"} <= materialized
    assert not materialized & {"decisions/canonical", "events/canonical"}


def test_a_table_left_by_the_previous_layout_is_named_not_loaded_into(tmp_path):
    import duckdb

    settings = _decisions_day(tmp_path)
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:  # the earlier release's raw table
        con.execute('CREATE TABLE decisions_raw (uuid VARCHAR, "date" DATE, experiment VARCHAR)')
    result = run_day(
        settings,
        START,
        DagsterInstance.ephemeral(),
        resources={"loader": LoaderConfig(require_success=False)},
    )
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "decisions__raw_table")
    text = failure.step_failure_data.error.to_string()
    assert "decisions_raw exists with another layout" in text and "Drop or rename" in text


def test_a_local_directory_with_quotes_in_its_path_loads_exactly_its_rows(tmp_path):
    # Staged paths reach DuckDB as SQL string literals: a quote left unescaped would end the
    # literal, and `', '` would splice another path into the file list.
    settings = local_settings(tmp_path / "o'brien's data', 'x")
    written = write_export(settings.local_source_dir, [START], SMALL)
    result = run_day(settings, START, DagsterInstance.ephemeral())
    assert result.success
    assert all_clean(result), checks_of(result)
    for export_type in ExportType:
        raw = query(settings, f"SELECT count(*) FROM {export_type.value}_raw")[0][0]
        assert raw == rows_of(written, export_type, START).rows


def test_copies_in_different_files_and_row_groups_keep_the_earliest_processed_copy(tmp_path):
    """A day of several row groups read in parallel without insertion order: the winner is still
    the copy processed first, whichever file, thread or row group holds it."""
    import datetime as dt

    from optimizely_assets.loading.staging_copy import StagedFile
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    rows = 3 * wh.row_group_size  # spans row groups in every file combination
    base = partition_table(ExportType.EVENTS, "purchase", rows, START)
    uuids = base.column("uuid")
    late = pc.add(base.column("process_timestamp"), pa.scalar(dt.timedelta(hours=1)))
    # The later copy comes first on disk, in another file: only the order decides.
    copies = base.slice(0, 500).set_column(
        base.column_names.index("process_timestamp"), "process_timestamp", late.slice(0, 500)
    )
    copies = copies.set_column(
        base.column_names.index("user_ip"), "user_ip", pa.array(["late"] * 500, pa.string())
    )
    paths = []
    for i, table in enumerate([copies, base.slice(0, rows // 2), base.slice(rows // 2)]):
        paths.append(tmp_path / f"part-{i}.parquet")
        write_parquet(table, paths[-1])
    staged = [StagedFile(uri=str(p), source_uri=str(p), rows=0) for p in paths]
    wh.load_raw_day(ExportType.EVENTS, START, staged, [])
    stats = wh.merge_canonical(ExportType.EVENTS, START, 30)
    assert stats.inserted == len(set(uuids.to_pylist())) == rows
    with wh.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE user_ip = 'late'").fetchone() == (0,)
