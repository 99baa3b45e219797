"""A pool's one slot goes to one step at a time, whichever processes claim it at the same moment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._utils.concurrency import ConcurrencySlotStatus

from optimizely_assets.concurrency import pool_problems
from optimizely_assets.instance import AtomicSlotSqliteEventLogStorage
from optimizely_assets_tests.claim_slots import POOL

REPO = Path(__file__).resolve().parent.parent


def holder(storage: SqliteEventLogStorage) -> list[tuple[str, str]]:
    return [(c.run_id, c.step_key) for c in storage.get_concurrency_info(POOL).claimed_slots]


def test_a_claim_that_read_a_slot_before_another_took_it_is_blocked(tmp_path):
    """The interleaving Dagster's own claim loses: B read the free slot, A took it, then B writes."""
    first = AtomicSlotSqliteEventLogStorage(str(tmp_path))
    second = AtomicSlotSqliteEventLogStorage(str(tmp_path))
    first.set_concurrency_slots(POOL, 1)
    with second.index_connection() as conn:
        stale = second._free_slot_id(conn, POOL)
    assert stale is not None
    assert first.claim_concurrency_slot(POOL, "run-a", "canonical").is_claimed
    with second.index_connection() as conn:
        assert second._take_slot(conn, stale, "run-b", "canonical") is ConcurrencySlotStatus.BLOCKED
    assert holder(first) == [("run-a", "canonical")]
    first.free_concurrency_slot_for_step("run-a", "canonical")
    with second.index_connection() as conn:
        assert second._take_slot(conn, stale, "run-b", "canonical") is ConcurrencySlotStatus.CLAIMED
    assert holder(first) == [("run-b", "canonical")]


def test_four_processes_claiming_one_slot_at_once_never_hold_it_together(tmp_path):
    AtomicSlotSqliteEventLogStorage(str(tmp_path)).set_concurrency_slots(POOL, 1)
    start_at = f"{time.time() + 2:.3f}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optimizely_assets_tests.claim_slots",
                str(tmp_path),
                f"run-{i}",
                "20",
                start_at,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    assert [int(o) for o in outputs] == [0] * 4
    assert holder(AtomicSlotSqliteEventLogStorage(str(tmp_path))) == []


def test_an_instance_on_dagsters_own_sqlite_storage_is_named_as_the_problem(tmp_path):
    (tmp_path / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\n"
    )
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.event_log_storage) is SqliteEventLogStorage
        (problem,) = pool_problems(instance, [POOL])
    assert "SqliteEventLogStorage can give a pool's one slot to two steps" in problem
    assert "optimizely_assets.instance.AtomicSlot" in problem
