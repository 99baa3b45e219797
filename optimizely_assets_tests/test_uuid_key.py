"""uuid_key: exact on every string, the same on both backends, trusted only where checked, and
filled in place in a warehouse built before it (DuckDB here; BigQuery in test_uuid_key_bigquery)."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pytest

from optimizely_assets.assets.checks import no_duplicates
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets.warehouse.uuid_key import duckdb_expr, uuid_key, uuid_text
from optimizely_assets_tests.tie_data import CASES_DAY1, LOWER, MIXED, UPPER

T = ExportType.DECISIONS
DAYS = date_range(dt.date(2024, 1, 1), 3)
SPEC = ExportSpec(decisions_per_day=400, cross_day_duplicates=20, seed=5)


def _fuzz(n: int = 3000) -> list[str]:
    """Strings near the UUID shape: case flips, dashes moved, escapes, non-ASCII, newlines."""
    rng = random.Random(7)
    alphabet = "0123456789abcdefABCDEF-\\x{}é\n "
    out = [*CASES_DAY1, UPPER, LOWER + "\n", LOWER.upper().replace("A", "a", 1), "-" * 36]
    for _ in range(n):
        base = list(LOWER)
        for _ in range(rng.randint(0, 3)):
            base[rng.randrange(36)] = rng.choice(alphabet)
        out.append(
            "".join(base) if rng.random() < 0.8 else "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        )
    return list(dict.fromkeys(out))


def test_the_key_is_exact_and_short_for_uuids():
    values = _fuzz()
    keys = [uuid_key(v) for v in values]
    assert len(set(keys)) == len(values)  # injective on all of them
    assert [uuid_text(k) for k in keys] == values  # and the uuid comes back exactly
    assert len(uuid_key(LOWER)) == len(uuid_key(UPPER)) == 17
    assert uuid_key(LOWER)[1:] == uuid_key(UPPER)[1:] and uuid_key(LOWER) != uuid_key(UPPER)
    assert uuid_key(MIXED) == b"\x03" + MIXED.encode()  # mixed case: its own bytes
    assert uuid_key("12345678-1234-1234-1234-123456789012")[:1] == b"\x01"


def test_duckdb_computes_the_same_key_as_the_definition():
    values = _fuzz()
    con = duckdb.connect()
    con.execute("CREATE TABLE v (i INTEGER, uuid VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", list(enumerate(values)))
    rows = con.execute(f"SELECT i, {duckdb_expr('uuid')} FROM v ORDER BY i").fetchall()
    assert [bytes(k) for _, k in rows] == [uuid_key(v) for v in values]


def _load(wh: DuckDBWarehouse, tmp_path, days=DAYS) -> None:
    written = write_export(tmp_path / "src", days, SPEC, types=[T])
    for w in written:
        files = [StagedFile(str(tmp_path / "src" / k), k, n) for k, n in w.files.items()]
        wh.load_raw_day(T, w.day, files, [])
        wh.merge_canonical(T, w.day, 30)


def _copy_to_first_day(wh: DuckDBWarehouse, day: dt.date, key_sql: str) -> None:
    with wh.connect() as con:
        con.execute(
            f"INSERT INTO decisions SELECT * REPLACE (DATE '{DAYS[0]}' AS export_date, {key_sql} AS uuid_key) "
            f"FROM decisions WHERE export_date = DATE '{day}' ORDER BY uuid LIMIT 1"
        )


def test_a_copy_without_its_key_fails_the_duplicate_check(tmp_path):
    """The probe compares keys: a duplicate written without its key (another tool) is invisible to
    it. A row without a key anywhere in the window fails the check; a wrong key fails the check of
    the row's own day, which is where uuid text is read (the window is read as keys only)."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    _load(wh, tmp_path, DAYS[:2])
    day = DAYS[1]
    _copy_to_first_day(wh, day, "NULL")
    _, found = wh.canonical_findings(T, day, 30)
    assert found.duplicates == [] and found.unkeyed == 1  # the copy is not seen as one...
    result = no_duplicates(T, day, found)
    assert not result.passed and "have no uuid_key or not their uuid's" in result.description  # ...but fails
    assert result.metadata["rows_without_their_uuid_key"].value == 1
    with wh.connect() as con:
        con.execute("UPDATE decisions SET uuid_key = '\\x03oops'::BLOB WHERE uuid_key IS NULL")
    assert wh.canonical_findings(T, day, 30)[1].unkeyed == 0  # a key, though wrong: not this day's row
    assert not no_duplicates(T, DAYS[0], wh.canonical_findings(T, DAYS[0], 30)[1]).passed
    with wh.connect() as con:
        con.execute("DELETE FROM decisions WHERE uuid_key = '\\x03oops'::BLOB")
    for d in DAYS[:2]:
        assert no_duplicates(T, d, wh.canonical_findings(T, d, 30)[1]).passed
    _copy_to_first_day(wh, day, "uuid_key")  # a copy with its key: a duplicate, found as one
    assert [n for _, n in wh.canonical_findings(T, day, 30)[1].duplicates] == [2]


def test_a_warehouse_from_before_the_key_is_upgraded_in_place(tmp_path):
    """Built as the previous release left it (canonical without uuid_key), then the next day runs."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    _load(wh, tmp_path, DAYS[:2])
    with wh.connect() as con:
        before = con.execute("SELECT * EXCLUDE (uuid_key) FROM decisions ORDER BY uuid").fetchall()
        con.execute("ALTER TABLE decisions DROP COLUMN uuid_key")  # the previous release's layout
    written = write_export(tmp_path / "src", DAYS, SPEC, types=[T])[2]  # re-sends uuids of days 1-2
    files = [StagedFile(str(tmp_path / "src" / k), k, n) for k, n in written.files.items()]
    wh.load_raw_day(T, DAYS[2], files, [])
    stats = wh.merge_canonical(T, DAYS[2], 30)
    assert stats.already_present == SPEC.cross_day_duplicates  # the old days' keys found the re-sends
    with wh.connect() as con:
        rows = con.execute("SELECT uuid, uuid_key FROM decisions").fetchall()
        kept = con.execute(
            f"SELECT * EXCLUDE (uuid_key) FROM decisions WHERE export_date < DATE '{DAYS[2]}' ORDER BY uuid"
        ).fetchall()
        assert kept == before  # the upgrade changed no row
        assert all(bytes(k) == uuid_key(u) for u, k in rows)
        # Idempotent: the statement again changes nothing, and the next step does not run it.
        from optimizely_assets.warehouse.duckdb_sql import fill_uuid_keys

        assert con.execute(fill_uuid_keys(T)).fetchone()[0] == 0
    for day in DAYS:
        _, found = wh.canonical_findings(T, day, 30)
        assert found.duplicates == [] and found.missing == {} and found.unkeyed == 0


@pytest.mark.parametrize("reverse", [False, True])
def test_case_variants_are_distinct_uuids_in_either_load_order(tmp_path, reverse):
    """An uppercase UUID is another string than its lowercase twin: both stay, in either order."""
    import pyarrow.parquet as pq

    from optimizely_assets.demo.synthetic import partition_table

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    days = list(reversed(DAYS[:2])) if reverse else DAYS[:2]
    for day, uuids in zip(DAYS[:2], ([LOWER, MIXED], [UPPER, LOWER, MIXED.lower()]), strict=True):
        table = partition_table(T, "1", len(uuids), day, seed=1)
        table = table.set_column(table.column_names.index("uuid"), "uuid", [uuids])
        pq.write_table(table, tmp_path / f"{day}.parquet")
    for day in days:
        wh.load_raw_day(T, day, [StagedFile(str(tmp_path / f"{day}.parquet"), "s", 0)], [])
        wh.merge_canonical(T, day, 30)
    with wh.connect() as con:
        got = sorted(u for (u,) in con.execute("SELECT uuid FROM decisions").fetchall())
    assert got == sorted([LOWER, MIXED, UPPER])  # MIXED.lower() is LOWER: one uuid


def test_the_checks_after_a_merge_and_alone_find_the_same_stale_rows(tmp_path):
    """Right after its MERGE, a step's checks reuse the MERGE's keyed uuids of raw's day; alone, they
    read raw again. A canonical row raw's day lacks is found, and the same way, on both paths."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    _load(wh, tmp_path, DAYS[:1])
    day = DAYS[0]
    stale = "ffffffff-0000-4000-8000-000000000000"
    with wh.session() as step:
        step.merge_canonical(T, day, 30)
        with step.connect() as con:
            con.execute(
                f"INSERT INTO decisions SELECT * REPLACE ('{stale}' AS uuid, "
                f"{duckdb_expr(repr(stale))} AS uuid_key) FROM decisions WHERE export_date = DATE '{day}' LIMIT 1"
            )
        after_merge = step.canonical_findings(T, day, 30)
    alone = wh.canonical_findings(T, day, 30)
    assert after_merge == alone
    assert (alone[1].not_in_raw, alone[1].not_in_raw_examples) == (1, (stale,))
    assert alone[1].unkeyed == 0 and alone[1].duplicates == []


def test_a_day_reloaded_on_the_merges_connection_is_checked_against_its_new_rows(tmp_path):
    """The checks reuse the MERGE's uuids of raw's day only while raw's day is what the MERGE read:
    a re-delivered day (other rows) loaded on the same connection makes canonical's day stale, and
    the checks must say so, as they do alone."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    day = DAYS[0]
    first = write_export(tmp_path / "a", [day], SPEC, types=[T])[0]
    again = write_export(tmp_path / "b", [day], ExportSpec(decisions_per_day=400, seed=99), types=[T])[0]
    with wh.session() as step:
        step.load_raw_day(
            T, day, [StagedFile(str(tmp_path / "a" / k), k, n) for k, n in first.files.items()], []
        )
        step.merge_canonical(T, day, 30)
        step.load_raw_day(
            T, day, [StagedFile(str(tmp_path / "b" / k), k, n) for k, n in again.files.items()], []
        )
        on_connection = step.canonical_findings(T, day, 30)
    alone = wh.canonical_findings(T, day, 30)
    assert on_connection == alone
    assert alone[1].not_in_raw == len(first.unique_uuids - again.unique_uuids) > 0
