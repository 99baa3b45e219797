"""The canonical checks right after the day's MERGE on its connection (duckdb_checks.py): they take
the window's other days from the MERGE's probe and read only the day's rows. For every fault the
checks catch, the fault is made on that path, and it must be found as the checks run alone find it."""

from __future__ import annotations

import datetime as dt

import pytest

from optimizely_assets.assets.checks import all_present, no_duplicates
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse import duckdb_sql
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

T = ExportType.DECISIONS
DAYS = date_range(dt.date(2024, 1, 1), 3)
SPEC = ExportSpec(decisions_per_day=400, cross_day_duplicates=20, seed=11)


def _warehouse(tmp_path) -> DuckDBWarehouse:
    """Days 1-2 loaded and merged; day 3 (which re-sends uuids of days 1-2) in raw only."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    for w in write_export(tmp_path / "src", DAYS, SPEC, types=[T]):
        files = [StagedFile(str(tmp_path / "src" / k), k, n) for k, n in w.files.items()]
        wh.load_raw_day(T, w.day, files, [])
        if w.day != DAYS[2]:
            wh.merge_canonical(T, w.day, 30)
    return wh


def _after_merge(wh: DuckDBWarehouse, write_after: str | None = None):
    """Day 3's MERGE and its checks in one session (as the canonical step runs them); whether the
    checks took the MERGE's probe (the full checks build ``checked_uuids``)."""
    with wh.session() as step:
        step.merge_canonical(T, DAYS[2], 30)
        if write_after:
            with step.connect() as con:
                con.execute(write_after)
        found = step.canonical_findings(T, DAYS[2], 30)
        with step.connect() as con:
            full = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'checked_uuids'"
            ).fetchone()
    return found, full[0] == 0


def test_a_clean_day_is_checked_from_the_merges_probe_as_alone(tmp_path):
    wh = _warehouse(tmp_path)
    (raw, found), reused = _after_merge(wh)
    assert reused
    assert wh.canonical_findings(T, DAYS[2], 30) == (raw, found)
    assert raw.rows == 400 and found.missing == {} and found.duplicates == [] and found.unkeyed == 0


def test_a_day_merged_again_is_checked_from_the_probe_of_its_other_days(tmp_path):
    """A re-run deletes canonical's day before the probe: had the probe read the day's old rows,
    the MERGE would insert nothing and the day's keys would all still be counted as found there."""
    wh = _warehouse(tmp_path)
    first, _ = _after_merge(wh)
    (raw, found), reused = _after_merge(wh)  # the same day again: its rows are replaced
    assert reused
    assert (raw, found) == first == wh.canonical_findings(T, DAYS[2], 30)
    with wh.connect() as con:
        (rows,) = con.execute(
            f"SELECT count(*) FROM decisions WHERE export_date = DATE '{DAYS[2]}'"
        ).fetchone()
    assert rows == len(_uuids_of_day(tmp_path)) - SPEC.cross_day_duplicates


def _uuids_of_day(tmp_path) -> set[str]:
    import pyarrow.parquet as pq

    return {
        u
        for f in (tmp_path / "src").rglob(f"date={DAYS[2]}/**/*.parquet")
        for u in pq.read_table(f, columns=["uuid"]).column(0).to_pylist()
        if u is not None
    }


def _broken_merge(monkeypatch, old: str, new: str) -> None:
    original = duckdb_sql.merge_canonical

    def merge(*args, **kwargs) -> str:
        text = original(*args, **kwargs)
        assert old in text
        return text.replace(old, new)

    monkeypatch.setattr(duckdb_sql, "merge_canonical", merge)


@pytest.mark.parametrize(
    ("fault", "old", "new", "failing"),
    [
        # inserts the re-sent uuids the window already holds: duplicates
        (
            "ignores the window",
            f"ANTI JOIN {duckdb_sql.WINDOW_HITS} AS h",
            "ANTI JOIN (SELECT NULL::BLOB AS uuid_key) AS h",
            "dups",
        ),
        # inserts no uuid that has several copies in the day: missing uuids
        (
            "drops multi-copy uuids",
            "FROM fresh WHERE n = 1\n  UNION ALL",
            "FROM fresh WHERE n = 1 AND false\n  UNION ALL",
            "missing",
        ),
        # writes no key: rows no probe can see
        ("writes no key", "       w.uuid_key\n", "       NULL::BLOB\n", "unkeyed"),
        # writes keys that are not their uuids': each row's own, so no count gives it away
        ("writes wrong keys", "       w.uuid_key\n", "       w.uuid_key || '\\x00'::BLOB\n", "unkeyed"),
        # writes the day's row twice: a duplicate inside the day
        (
            "writes a row twice",
            "FROM fresh WHERE n = 1\n",
            "FROM fresh WHERE n = 1 UNION ALL (SELECT rid, uuid_key FROM fresh WHERE n = 1 ORDER BY uuid LIMIT 1)\n",
            "dups",
        ),
    ],
)
def test_a_faulty_merge_fails_the_checks_after_it_as_alone(tmp_path, monkeypatch, fault, old, new, failing):
    wh = _warehouse(tmp_path)
    _broken_merge(monkeypatch, old, new)
    (raw, found), _ = _after_merge(wh)
    monkeypatch.undo()
    assert wh.canonical_findings(T, DAYS[2], 30) == (raw, found), fault
    results = {
        "dups": no_duplicates(T, DAYS[2], found),
        "missing": all_present(T, DAYS[2], _no_files(), raw, found),
        "unkeyed": no_duplicates(T, DAYS[2], found),
    }
    assert not results[failing].passed, fault
    assert {"dups": bool(found.duplicates), "missing": bool(found.missing), "unkeyed": bool(found.unkeyed)}[
        failing
    ]


def _no_files() -> DayManifest:
    """A manifest without files: ``all_present`` then judges canonical alone."""
    return DayManifest(T, DAYS[2], "src", None, None, files=())


@pytest.mark.parametrize(
    "write",
    [
        # a copy of one of the day's rows written into day 1 after the MERGE, keyed: a duplicate
        f"INSERT INTO decisions SELECT * REPLACE (DATE '{DAYS[0]}' AS export_date) FROM decisions "
        f"WHERE export_date = DATE '{DAYS[2]}' ORDER BY uuid LIMIT 1",
        # a row of the day removed after the MERGE: a missing uuid
        f"DELETE FROM decisions WHERE uuid = (SELECT min(uuid) FROM decisions WHERE export_date = DATE '{DAYS[2]}')",
        # a row of day 1 made a copy of one of the day's: a duplicate, and canonical's row count unchanged
        f"UPDATE decisions SET uuid = d.uuid, uuid_key = d.uuid_key FROM (SELECT uuid, uuid_key FROM decisions "
        f"WHERE export_date = DATE '{DAYS[2]}' ORDER BY uuid LIMIT 1) AS d WHERE decisions.uuid = (SELECT min(uuid) "
        f"FROM decisions WHERE export_date = DATE '{DAYS[0]}')",
        # a row of raw's day removed after the MERGE: canonical's day holds a uuid raw's no longer has
        f"DELETE FROM decisions_raw WHERE uuid = (SELECT min(uuid) FROM decisions WHERE export_date = DATE '{DAYS[2]}')",
    ],
)
def test_a_write_after_the_merge_on_its_connection_is_seen(tmp_path, write):
    """The MERGE's probe describes the tables only until something else writes them on the same
    connection: once the connection was handed out, the checks probe the window again."""
    wh = _warehouse(tmp_path)
    (raw, found), reused = _after_merge(wh, write_after=write)
    assert not reused
    assert wh.canonical_findings(T, DAYS[2], 30) == (raw, found)
    assert found.duplicates or found.missing or found.not_in_raw


def test_checks_over_another_horizon_than_the_merges_probe_the_window_again(tmp_path):
    """The MERGE's probe covers its own window: checks asked about another horizon do not reuse it."""
    wh = _warehouse(tmp_path)
    with wh.session() as step:
        step.merge_canonical(T, DAYS[2], 0)  # a window of the day alone: the re-sends are inserted
        raw, found = step.canonical_findings(T, DAYS[2], 30)
    assert wh.canonical_findings(T, DAYS[2], 30) == (raw, found)
    assert len(found.duplicates) == SPEC.cross_day_duplicates


def test_the_canonical_step_checks_a_clean_day_from_its_merges_probe(export_dir, tmp_path, monkeypatch):
    """In a daily run, the canonical step's checks of a clean day take the MERGE's probe: the full
    checks (which would build ``checked_uuids``) are not run, and every check passes."""
    from dagster import DagsterInstance

    from optimizely_assets.warehouse import duckdb_checks
    from optimizely_assets_tests.helpers import all_clean, local_settings, run_day

    def not_expected(*_args, **_kwargs):
        raise AssertionError("the full checks ran after the MERGE of a clean day")

    monkeypatch.setattr(duckdb_checks, "checked_uuids", not_expected)
    settings = local_settings(tmp_path)
    with DagsterInstance.ephemeral() as instance:
        for day in sorted({w.day for w in export_dir[1]})[:2]:
            result = run_day(settings, day, instance)
            assert result.success and all_clean(result)
