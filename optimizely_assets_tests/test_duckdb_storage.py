"""The embedded warehouse's file: its storage version, a step's session on one connection, and how
files map to its columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import StagedFile, same_columns
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets_tests.conftest import START

T = ExportType.DECISIONS


def storage_version(wh: DuckDBWarehouse) -> str:
    with wh.connect(read_only=True) as con:
        (tags,) = con.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = 'warehouse'"
        ).fetchone()
    return tags["storage_version"]


def test_a_new_file_gets_the_storage_version_and_an_existing_file_keeps_its_own(tmp_path):
    new = DuckDBWarehouse(path=str(tmp_path / "new.duckdb"))
    new.ensure_tables(T)
    assert storage_version(new) == new.storage_version + "+"

    old = tmp_path / "old.duckdb"  # written by a plain DuckDB, on its default version
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE TABLE kept (a INTEGER)")
    default = DuckDBWarehouse(path=str(tmp_path / "default.duckdb"), storage_version=None)
    default.ensure_tables(T)
    before = storage_version(default)
    assert before != storage_version(new)

    existing = DuckDBWarehouse(path=str(old))
    existing.ensure_tables(T)
    with existing.connect() as con:
        con.execute("CHECKPOINT")
    assert storage_version(existing) == before  # not upgraded behind the user's back


def load_a_day(tmp_path: Path, wh: DuckDBWarehouse) -> int:
    root = tmp_path / "source"
    (written,) = write_export(root, [START], ExportSpec(decisions_per_day=2_000), types=[T])
    files = [
        StagedFile(uri=str(root / k), source_uri=str(root / k), rows=n) for k, n in written.files.items()
    ]
    wh.load_raw_day(T, START, files, [])
    return len(written.unique_uuids)


def test_a_session_attaches_the_file_once_for_the_merge_and_the_checks(tmp_path, monkeypatch):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    uuids = load_a_day(tmp_path, wh)
    attaches = []
    from optimizely_assets.warehouse import duckdb as module

    attach = module.attach
    monkeypatch.setattr(module, "attach", lambda path, ro, *a: attaches.append(ro) or attach(path, ro, *a))

    with wh.session() as step:
        stats = step.merge_canonical(T, START, 30)
        summary, found = step.canonical_findings(T, START, 30)
    assert len(attaches) == 1
    assert stats.inserted == uuids and summary.rows == stats.day_rows
    assert found.missing == {} and found.duplicates == []

    # The same calls outside a session: one attach each, the same findings.
    attaches.clear()
    assert wh.canonical_findings(T, START, 30) == (summary, found)
    assert wh.merge_canonical(T, START, 30).inserted == 0
    assert len(attaches) == 2


def test_a_load_in_a_session_leaves_the_connection_as_it_found_it(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with wh.session() as step:
        load_a_day(tmp_path, step)
        with step.connect() as con:
            (setting,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    assert setting is True  # the MERGE after it inserts in the order it selects


LOCKED_WRITE = """
import sys, duckdb
try:
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS probe (a INTEGER)")
except duckdb.IOException as exc:
    sys.exit(3 if "lock" in str(exc).lower() else 1)
"""


def another_process_can_write(path: str) -> bool:
    result = subprocess.run([sys.executable, "-c", LOCKED_WRITE, path], capture_output=True, timeout=60)
    assert result.returncode in (0, 3), result.stderr
    return result.returncode == 0


def test_a_failed_step_releases_the_file_for_other_processes(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    load_a_day(tmp_path, wh)
    with pytest.raises(RuntimeError, match="the step failed"):
        with wh.session() as step:
            step.merge_canonical(T, START, 30)
            assert not another_process_can_write(wh.path)  # the session holds the file
            raise RuntimeError("the step failed")
    assert another_process_can_write(wh.path)


def staged_files(root: Path, keys: list[str]) -> list[StagedFile]:
    return [
        StagedFile(
            str(root / k),
            str(root / k),
            pq.read_metadata(root / k).num_rows,
            tuple(pq.read_schema(root / k).names),
        )
        for k in keys
    ]


def raw_values(wh: DuckDBWarehouse, column: str) -> dict[str, object]:
    with wh.connect(read_only=True) as con:
        return dict(
            con.execute(f"SELECT uuid, {column} FROM decisions_raw WHERE export_date = ?", [START]).fetchall()
        )


def test_files_load_by_column_name_whatever_their_column_order_or_a_column_the_first_lacks(tmp_path):
    root = tmp_path / "source"
    (written,) = write_export(
        root, [START], ExportSpec(decisions_per_day=3_000, files_per_day=3, duplicate_rate=0.0), types=[T]
    )
    keys = sorted(written.files)
    source = pa.concat_tables(pq.read_table(root / k) for k in keys)
    expected = dict(zip(source["uuid"].to_pylist(), source["user_agent"].to_pylist(), strict=True))

    # Every file's columns in reverse order, alike: the load skips union_by_name, matches by name.
    for k in keys:
        table = pq.read_table(root / k)
        pq.write_table(table.select(table.column_names[::-1]), root / k)
    files = staged_files(root, keys)
    assert same_columns(files)
    reordered = DuckDBWarehouse(path=str(tmp_path / "reordered.duckdb"))
    reordered.load_raw_day(T, START, files, [])
    assert raw_values(reordered, "user_agent") == expected

    # The first file lacks a nullable column the others have. Without union_by_name DuckDB takes
    # the first file's columns and drops that column of every other file, without an error.
    first = pq.read_table(root / keys[0])
    pq.write_table(first.drop_columns(["user_agent"]), root / keys[0])
    files = staged_files(root, keys)
    assert not same_columns(files)
    lacking = DuckDBWarehouse(path=str(tmp_path / "lacking.duckdb"))
    lacking.load_raw_day(T, START, files, [])
    loaded = raw_values(lacking, "user_agent")
    assert loaded == {u: None if u in set(first["uuid"].to_pylist()) else v for u, v in expected.items()}
    assert sum(v is not None for v in loaded.values()) == source.num_rows - first.num_rows > 0


LOAD_IN_LOS_ANGELES = """
import datetime as dt, json, sys
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
files = [StagedFile(uri, source, rows, tuple(columns)) for uri, source, rows, columns in json.loads(sys.argv[2])]
DuckDBWarehouse(path=sys.argv[1]).load_raw_day(ExportType.DECISIONS, dt.date.fromisoformat(sys.argv[3]), files, [])
"""


@pytest.mark.parametrize("first", ["spark-millis", "spark-int96", "pyarrow"])
def test_a_day_of_spark_and_pyarrow_files_loads_every_timestamp_as_utc(tmp_path, first):
    """Same column names and order, so no union_by_name, but the first file's timestamps are naive
    (Spark) or UTC (pyarrow) and the others' the other kind. Loaded by a process in a non-UTC zone,
    every instant still loads as written."""
    root = tmp_path / "source"
    spec = ExportSpec(decisions_per_day=3_000, files_per_day=3, duplicate_rate=0.0)
    (written,) = write_export(root, [START], spec, types=[T])
    keys = sorted(written.files)
    source = pa.concat_tables(pq.read_table(root / k) for k in keys)
    for i, k in enumerate(keys):
        flavor = first if i == 0 else ("pyarrow" if first != "pyarrow" else "spark-int96")
        write_parquet(pq.read_table(root / k), root / k, flavor=flavor)
    files = staged_files(root, keys)
    assert same_columns(files)
    path = str(tmp_path / "w.duckdb")
    args = [path, json.dumps([[f.uri, f.source_uri, f.rows, f.columns] for f in files]), START.isoformat()]
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_IN_LOS_ANGELES, *args],
        env={**os.environ, "TZ": "America/Los_Angeles"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with DuckDBWarehouse(path=path).connect(read_only=True) as con:
        loaded = dict(
            con.execute(
                "SELECT uuid, epoch_ms(process_timestamp) FROM decisions_raw WHERE export_date = ?", [START]
            ).fetchall()
        )
    ms = pc.cast(source["process_timestamp"], pa.int64()).to_pylist()
    assert loaded == dict(zip(source["uuid"].to_pylist(), ms, strict=True))


def test_a_commit_that_ran_out_of_space_says_so_and_leaves_the_table_as_it_was(tmp_path):
    """DuckDB ends the transaction itself when a COMMIT fails; the error must be the cause, not the
    ROLLBACK that then finds no transaction ("cannot rollback - no transaction is active")."""
    import errno

    import duckdb

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with wh.transaction() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(OSError) as raised:
        with wh.transaction() as con:
            con.execute("INSERT INTO t VALUES (2)")
            con.execute("ROLLBACK")  # as a failed COMMIT leaves it
            raise duckdb.IOException('Could not write file "w.duckdb.wal": No space left on device')
    assert raised.value.errno == errno.ENOSPC
    assert "w.duckdb: no space left on device" in str(raised.value) and "cannot rollback" not in str(
        raised.value
    )
    with wh.connect() as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
