"""A pool's one slot goes to one step at a time, whichever processes claim it at the same moment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun
from dagster._utils.concurrency import ConcurrencySlotStatus

from optimizely_assets.concurrency import ensure_merges_serialised
from optimizely_assets.instance import atomic_slot_claims, claims_race
from optimizely_assets.warehouse import MergeConcurrencyError
from optimizely_assets_tests.claim_slots import POOL

REPO = Path(__file__).resolve().parent.parent


def project_home(tmp_path: Path) -> Path:
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    return tmp_path


def holder(storage) -> list[tuple[str, str]]:
    return [(c.run_id, c.step_key) for c in storage.get_concurrency_info(POOL).claimed_slots]


def test_a_claim_that_read_a_slot_before_another_took_it_is_blocked(tmp_path):
    """The interleaving Dagster's own claim loses: B read the free slot, A took it, then B writes."""
    home = str(project_home(tmp_path))
    with DagsterInstance.from_config(home) as a, DagsterInstance.from_config(home) as b:
        first = atomic_slot_claims(a).event_log_storage
        second = atomic_slot_claims(b).event_log_storage
        assert not claims_race(a) and not claims_race(b)
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
    home = project_home(tmp_path)
    with DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
    start_at = f"{time.time() + 2:.3f}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optimizely_assets_tests.claim_slots",
                str(home),
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
    with DagsterInstance.from_config(str(home)) as instance:
        assert holder(instance.event_log_storage) == []


def test_an_insert_step_on_dagsters_own_claims_refuses_and_runs_once_they_are_atomic(tmp_path):
    """`execute_in_process` skips the project's executor: the step itself names what to do."""
    with DagsterInstance.from_config(str(project_home(tmp_path))) as instance:
        run_id = instance.add_run(DagsterRun(job_name="optimizely_daily")).run_id
        with pytest.raises(MergeConcurrencyError, match="atomic_slot_claims"):
            ensure_merges_serialised(instance, run_id, POOL, serialised_by_backend=False)
        ensure_merges_serialised(atomic_slot_claims(instance), run_id, POOL, serialised_by_backend=False)


def test_a_step_queued_while_the_last_holder_left_gets_the_slot(tmp_path):
    """B read "no free slot" while A held it, A freed it, then B queued itself unassigned: Dagster's
    own claim leaves B blocked with the slot free, forever (a free assigns only queued steps)."""
    home = str(project_home(tmp_path))
    with DagsterInstance.from_config(home) as plain, DagsterInstance.from_config(home) as ours:
        storage = plain.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, "run-a", "canonical").is_claimed
        storage.free_concurrency_slot_for_step("run-a", "canonical")
        storage.add_pending_step(
            concurrency_key=POOL, run_id="run-b", step_key="canonical", should_assign=False
        )
        assert not storage.claim_concurrency_slot(POOL, "run-b", "canonical").is_claimed  # stuck
        assert (
            atomic_slot_claims(ours)
            .event_log_storage.claim_concurrency_slot(POOL, "run-b", "canonical")
            .is_claimed
        )
        assert holder(storage) == [("run-b", "canonical")]
