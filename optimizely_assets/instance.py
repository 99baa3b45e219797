"""Event log storages whose pool slots go to one step at a time (dagster.yaml, deploy/k8s/dagster.yaml).

Dagster 1.13's SQL storage claims a slot by reading a free slot's id, then writing the step into
that row. SQLite runs the read outside the write's transaction (pysqlite begins one only at the
first write) and Postgres runs each statement in autocommit, so ``FOR UPDATE`` holds nothing:
two steps that read the same free slot both write it and both start. Seen here: 6 processes
claiming one slot 40 times each overlapped 3 times. Writing the row only while it is still free
makes the claim a compare-and-set; the loser waits like any blocked step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._serdes import ConfigurableClassData
from dagster._utils.concurrency import ConcurrencySlotStatus


class AtomicSlotClaims:
    """Mixin for a SQL event log storage: a slot is taken only if no step holds it."""

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

    @staticmethod
    def _take_slot(conn: Any, slot_id: int, run_id: str, step_key: str) -> ConcurrencySlotStatus:
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


class AtomicSlotSqliteEventLogStorage(AtomicSlotClaims, SqliteEventLogStorage):
    """Dagster's SQLite event log storage in its usual place ($DAGSTER_HOME/history/runs/)."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> AtomicSlotSqliteEventLogStorage:
        base_dir = config_value.get("base_dir") or _default_base_dir()
        return cls(base_dir=base_dir, inst_data=inst_data)


def _default_base_dir() -> str:
    home = os.getenv("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "optimizely_assets.instance.AtomicSlotSqliteEventLogStorage needs DAGSTER_HOME set, "
            "or event_log_storage.config.base_dir in dagster.yaml"
        )
    return os.path.join(home, "history", "runs", "")


try:  # the k8s extra (deploy/k8s/dagster.yaml)
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
except ImportError:  # pragma: no cover - dagster-postgres is optional
    PostgresEventLogStorage = None

if PostgresEventLogStorage is not None:

    class AtomicSlotPostgresEventLogStorage(AtomicSlotClaims, PostgresEventLogStorage):
        """dagster-postgres's event log storage, with compare-and-set slot claims."""

        @classmethod
        def from_config_value(
            cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
        ) -> AtomicSlotPostgresEventLogStorage:
            # The parent builds its own class by name; build this one from the same settings.
            return cls(
                inst_data=inst_data,
                postgres_url=pg_url_from_config(config_value),
                should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                token_provider=get_token_provider_from_config(config_value),
            )
