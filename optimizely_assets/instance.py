"""Pool slots that go to one step at a time, on Dagster's own SQLite and Postgres storages.

Dagster 1.13's SQL event log storage claims a slot by reading a free slot's id, then writing the
step into that row. SQLite runs the read outside the write's transaction (pysqlite begins one
only at the first write) and dagster-postgres runs each statement in autocommit, so its
``FOR UPDATE`` holds nothing: two steps that read the same free slot both write it and both start.
Seen here: 6 processes claiming one slot 40 times each overlapped 1 to 3 times in two of three
tries; in CI, two canonical MERGEs overlapped by 0.26 s. Writing the row only while it is still
free makes the claim a compare-and-set; the loser waits like any blocked step.

The fix applies to the instance a run executes with (``atomic_slot_claims``): the project's
executor does it for every run it executes, and the in-process callers (the demo, the tests) do
it before ``execute_in_process``. No instance configuration changes, so any dagster.yaml works.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import sqlalchemy as db
from dagster._core.instance import DagsterInstance
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._utils.concurrency import ConcurrencyClaimStatus, ConcurrencySlotStatus


class AtomicSlotClaims:
    """Methods for a SQL event log storage: a slot is taken only if no step holds it, and a step
    queued while the last holder left is not forgotten."""

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ConcurrencyClaimStatus:
        """Dagster's claim, plus liveness: a step that read "no free slot" and then queued itself
        unassigned, while the holder freed the slot in between, would wait for a free that never
        comes (the free assigns only steps already queued). Seen: a claimer blocked for minutes with
        the slot free. A free slot with only unassigned steps queued is assigned again here."""
        claim = SqlEventLogStorage.claim_concurrency_slot
        status = claim(self, concurrency_key, run_id, step_key, priority)  # type: ignore[arg-type]
        if not status.is_claimed and not status.is_assigned and self.has_unassigned_slots(concurrency_key):  # type: ignore[attr-defined]
            self.assign_pending_steps([concurrency_key])  # type: ignore[attr-defined]
            status = claim(self, concurrency_key, run_id, step_key, priority)  # type: ignore[arg-type]
        return status

    def _claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str
    ) -> ConcurrencySlotStatus:
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            slot_id = self._free_slot_id(conn, concurrency_key)
            if slot_id is None:
                return ConcurrencySlotStatus.BLOCKED
            return self._take_slot(conn, slot_id, run_id, step_key)

    def _free_slot_id(self, conn: Any, concurrency_key: str) -> int | None:
        row = conn.execute(
            db_select([ConcurrencySlotsTable.c.id])
            .select_from(ConcurrencySlotsTable)
            .where(
                db.and_(
                    ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
                    ConcurrencySlotsTable.c.step_key == None,  # noqa: E711
                    ConcurrencySlotsTable.c.deleted == False,  # noqa: E712
                )
            )
            .limit(1)
        ).fetchone()
        return row[0] if row and row[0] else None

    def _take_slot(self, conn: Any, slot_id: int, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        taken = conn.execute(
            ConcurrencySlotsTable.update()
            .values(run_id=run_id, step_key=step_key)
            .where(
                db.and_(
                    ConcurrencySlotsTable.c.id == slot_id,
                    # The compare-and-set: another claimer may have written this row since it was read.
                    ConcurrencySlotsTable.c.step_key == None,  # noqa: E711
                    ConcurrencySlotsTable.c.deleted == False,  # noqa: E712
                )
            )
        ).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED


def atomic_slot_claims(instance: DagsterInstance) -> DagsterInstance:
    """Make ``instance``'s SQL event log storage claim pool slots by compare-and-set (in place)."""
    storage = instance.event_log_storage
    if claims_race(instance):
        for name in ("claim_concurrency_slot", "_claim_concurrency_slot", "_free_slot_id", "_take_slot"):
            setattr(storage, name, MethodType(getattr(AtomicSlotClaims, name), storage))
        storage.atomic_slot_claims = True
    return instance


def claims_race(instance: DagsterInstance) -> bool:
    """True if two steps claiming a slot of ``instance`` at once could both take it."""
    storage = instance.event_log_storage
    return isinstance(storage, SqlEventLogStorage) and not getattr(storage, "atomic_slot_claims", False)
