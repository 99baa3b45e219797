"""The embedded warehouse's compaction (warehouse/duckdb_compact.py, the weekly job): every row
kept, fewer row groups, the dedup window still finding re-sent uuids across compacted days."""

from __future__ import annotations

import datetime as dt

import duckdb

from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets.warehouse.duckdb_compact import compact, row_groups

T = ExportType.DECISIONS
DAYS = date_range(dt.date(2024, 1, 1), 4)
SPEC = ExportSpec(decisions_per_day=6_000, cross_day_duplicates=40, seed=3)


def _contents(path: str) -> dict[str, tuple]:
    """Every table's rows, order-free: count and a hash of each row summed."""
    with duckdb.connect(path, read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {t: con.execute(f"SELECT count(*), sum(hash(x)) FROM {t} AS x").fetchone() for t in tables}


def test_compaction_keeps_every_row_in_fewer_groups_and_the_window_still_dedups(tmp_path):
    # 2,048-row groups (the least DuckDB takes) stand in for the 16,384 of real days: the same shape on a small file.
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"), row_group_size=2_048)
    written = write_export(tmp_path / "src", DAYS, SPEC, types=[T])
    for w in written[:3]:
        wh.load_raw_day(
            T, w.day, [StagedFile(str(tmp_path / "src" / k), k, n) for k, n in w.files.items()], []
        )
        wh.merge_canonical(T, w.day, 30)
    with wh.connect() as con:
        con.execute("CHECKPOINT")
    before = _contents(wh.path)
    with wh.connect(read_only=True) as con:
        groups, small = row_groups(con)
    assert small > 8  # days of 2,048-row groups

    assert not compact(wh, min_small_row_groups=small).rewritten  # under the threshold: left alone
    assert _contents(wh.path) == before
    result = compact(wh, min_small_row_groups=8)
    assert result.rewritten and (result.row_groups_before, result.small_row_groups_before) == (groups, small)
    assert result.row_groups_after <= 3  # one group per table: raw, canonical, load_history
    assert _contents(wh.path) == before  # every row of every table, unchanged
    assert not compact(wh, min_small_row_groups=8).rewritten  # a compacted file is not rewritten again

    # The next day, appended in small groups again, finds its re-sent uuids in the compacted days.
    w = written[3]
    wh.load_raw_day(T, w.day, [StagedFile(str(tmp_path / "src" / k), k, n) for k, n in w.files.items()], [])
    stats = wh.merge_canonical(T, w.day, 30)
    assert stats.already_present == SPEC.cross_day_duplicates
    _, found = wh.canonical_findings(T, w.day, 30)
    assert found.duplicates == [] and found.missing == {} and found.unkeyed == 0


def test_the_weekly_job_compacts_the_embedded_warehouse_and_keeps_every_row(export_dir, tmp_path):
    """The job as the schedule runs it, on a real instance: left as is under its threshold, then
    rewritten with every table's rows unchanged; not defined where the warehouse is BigQuery."""
    from dagster import DagsterInstance

    from optimizely_assets.assets.maintenance import COMPACT_JOB
    from optimizely_assets.definitions import build_definitions
    from optimizely_assets.settings import Settings
    from optimizely_assets_tests.helpers import QUIET, local_settings, run_day, table_counts

    settings = local_settings(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        assert run_day(settings, DAYS[0], instance).success
        before = table_counts(settings)
        job = build_definitions(settings).resolve_job_def(COMPACT_JOB)
        results = [
            job.execute_in_process(
                instance=instance,
                run_config={**QUIET, "ops": {"compact_warehouse": {"config": {"min_small_row_groups": n}}}},
            )
            for n in (10_000, 0)
        ]
    rewritten = [
        next(e for e in r.all_node_events if e.event_type_value == "STEP_OUTPUT")
        .step_output_data.metadata["rewritten"]
        .value
        for r in results
    ]
    assert rewritten == [False, True]
    assert table_counts(settings) == before
    cloud = {"OPTIMIZELY_GCP_PROJECT": "proj", "OPTIMIZELY_GCS_BUCKET": "stage", "OPTIMIZELY_PAT": "x"}
    assert COMPACT_JOB not in {j.name for j in build_definitions(Settings.from_env(cloud)).jobs}


def test_a_compacted_file_counts_as_compacted(tmp_path):
    """A parallel copy ends its groups short of 122,880 rows: they must not count as small, or every
    weekly run would rewrite the file again."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with wh.connect() as con:
        con.execute("CREATE TABLE t AS SELECT i, md5(CAST(i AS VARCHAR)) AS s FROM range(400000) r(i)")
        con.execute("CHECKPOINT")
        groups, small = row_groups(con)
    assert (groups, small) == (25, 25)  # 16,384-row groups
    assert compact(wh, min_small_row_groups=0).row_groups_after <= 4
    with wh.connect(read_only=True) as con:
        assert row_groups(con)[1] <= 1  # the last group only
    assert not compact(wh, min_small_row_groups=1).rewritten


def test_compaction_keeps_the_files_storage_version_and_waits_for_a_run_holding_the_file(
    tmp_path, monkeypatch
):
    """A file of DuckDB's default storage version stays on it (an upgrade would lock out an older
    DuckDB). A run that takes the file between the count of its row groups and the rewrite is
    waited for, not failed."""
    import subprocess
    import sys

    from optimizely_assets.warehouse import duckdb_compact

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:  # DuckDB's default storage version, as an earlier release made it
        con.execute("CREATE TABLE t AS SELECT i FROM range(30000) r(i)")  # one small group
    holder = subprocess.Popen(  # on "go": takes the file as soon as it is free, holds it 2 s
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "sys.stdin.readline()\n"
            "while True:\n"
            "    try:\n"
            f"        c = duckdb.connect({str(path)!r}); break\n"
            "    except duckdb.IOException:\n"
            "        time.sleep(0.01)\n"
            "print('held', flush=True); time.sleep(2); c.close()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    real, attempts = duckdb_compact.rewrite_file, []

    def rewrite(*args):
        if not attempts:  # after the count, before the rewrite: the run takes the file
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "held"
        attempts.append(args)
        return real(*args)

    monkeypatch.setattr(duckdb_compact, "rewrite_file", rewrite)
    result = compact(DuckDBWarehouse(path=str(path)), min_small_row_groups=0)
    holder.wait()
    assert result.rewritten and len(attempts) > 1  # the first attempt met the lock, a later one ran
    with duckdb.connect(str(path), read_only=True) as con:
        tags = con.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()[0]
        assert tags["storage_version"] == "v1.0.0+"
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 30000
