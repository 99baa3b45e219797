"""The embedded warehouse's dedup window at its edges: the MERGE and the canonical checks search
the export days D - H .. D + H, both ends included, and no day beyond them."""

from __future__ import annotations

import datetime as dt

import pytest

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets.warehouse.uuid_key import uuid_key
from optimizely_assets_tests.conftest import START

T = ExportType.DECISIONS
H = 2
D = START + dt.timedelta(days=10)
# uuid of the day -> the export day canonical already holds it on (None: a new uuid)
ELSEWHERE = {"edge-past": -H, "beyond-past": -H - 1, "edge-future": H, "beyond-future": H + 1, "new": None}


def _insert(wh: DuckDBWarehouse, table: str, uuid: str, day: dt.date) -> None:
    values = {"uuid": uuid, "experiment_id": "1", "export_date": day}
    if table == "decisions":  # as the MERGE writes it: with its key
        values.update(event_date=day, uuid_key=uuid_key(uuid))
    with wh.connect() as con:
        con.execute(
            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )


@pytest.fixture
def merged(tmp_path) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    wh.ensure_tables(T)
    for uuid, offset in ELSEWHERE.items():
        _insert(wh, "decisions_raw", uuid, D)
        if offset is not None:  # loaded earlier, or later by a backfill, on another export day
            _insert(wh, "decisions", uuid, D + dt.timedelta(days=offset))
    stats = wh.merge_canonical(T, D, H)
    assert stats.window == (D - dt.timedelta(days=H), D + dt.timedelta(days=H))
    return wh


def _canonical_on(wh: DuckDBWarehouse, day: dt.date) -> set[str]:
    with wh.connect(read_only=True) as con:
        return {
            u for (u,) in con.execute("SELECT uuid FROM decisions WHERE export_date = ?", [day]).fetchall()
        }


def test_the_merge_skips_uuids_on_the_windows_edge_days_and_inserts_those_beyond_them(merged):
    assert _canonical_on(merged, D) == {"beyond-past", "beyond-future", "new"}
    _, findings = merged.canonical_findings(T, D, H)
    assert findings.missing == {} and findings.duplicates == []


def test_the_checks_find_a_copy_on_an_edge_day_and_none_beyond_it(merged):
    _insert(merged, "decisions", "new", D + dt.timedelta(days=H))
    _insert(merged, "decisions", "new", D - dt.timedelta(days=H + 1))  # outside the window: not counted
    _, findings = merged.canonical_findings(T, D, H)
    assert findings.duplicates == [("new", 2)]


@pytest.mark.parametrize("edge", ["edge-past", "edge-future"])
def test_the_checks_report_a_uuid_missing_once_its_edge_day_copy_is_gone(merged, edge):
    with merged.connect() as con:
        con.execute("DELETE FROM decisions WHERE uuid = ?", [edge])
    _, findings = merged.canonical_findings(T, D, H)
    assert findings.missing == {"1": 1}
