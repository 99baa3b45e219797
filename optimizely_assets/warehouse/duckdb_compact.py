"""Compaction of the embedded warehouse's file, so that a day's cost does not grow with history.

Days are written in 16,384-row groups (duckdb_attach.py: memory, parallel writes). Every statement
that filters on an export day visits each row group's statistics, and every attach and checkpoint
handles each group's pointers: at a year of 50,000-row days (1,111 groups a table) a new day cost
1.36x what it cost at day 31 (``python -m bench.run --only merge``). Rewritten in groups of
122,880 rows (DuckDB's default), a year is 149 groups a table, and the day costs what it did then.

The rewrite is the forget's (duckdb_forget.rewrite_file: ``COPY FROM DATABASE`` into a new file
that then replaces the old one, whose lock is held throughout the copy): all or nothing, and a
daily run waiting for the lock meanwhile opens the new file. The file keeps its storage version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from optimizely_assets.warehouse.duckdb_attach import waiting_for_lock
from optimizely_assets.warehouse.duckdb_forget import rewrite_file
from optimizely_assets.warehouse.duckdb_sql import text

if TYPE_CHECKING:
    from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

COMPACT_ROW_GROUP_SIZE = 122_880  # DuckDB's default: rows per group of a compacted file
# A group of fewer rows is small. Not COMPACT_ROW_GROUP_SIZE itself: a parallel copy ends its
# groups at 114,688 rows (7 x 16,384), and a rewritten file must not count as uncompacted.
SMALL_ROW_GROUP = COMPACT_ROW_GROUP_SIZE // 2


@dataclass(frozen=True)
class Compaction:
    row_groups_before: int
    row_groups_after: int
    small_row_groups_before: int  # of fewer than SMALL_ROW_GROUP rows
    bytes_before: int
    bytes_after: int
    rewritten: bool


def row_groups(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(row groups, those of fewer than ``SMALL_ROW_GROUP`` rows) over the file's tables:
    each group's rows are those of its first column's data segments."""
    tables = [
        t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
    ]
    total = small = 0
    for table in tables:
        n, s = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE n < {SMALL_ROW_GROUP}) FROM ("
            f"SELECT row_group_id, sum(count) AS n FROM pragma_storage_info({text(table)}) "
            "WHERE column_id = 0 AND column_path = '[0]' GROUP BY row_group_id)"
        ).fetchone()
        total, small = total + int(n), small + int(s)
    return total, small


def storage_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The attached file's own storage version (``v1.4.0+`` -> ``v1.4.0``): a rewrite keeps it, as
    nothing upgrades a file behind its user's back (duckdb_attach.py)."""
    rows = con.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    version = (rows[0][0] or {}).get("storage_version") if rows else None
    return version.rstrip("+") if version else None


def compact(wh: DuckDBWarehouse, min_small_row_groups: int) -> Compaction:
    """Rewrite the warehouse's file in large row groups if it holds more than
    ``min_small_row_groups`` small ones (each table's last group is one). A run holding the file
    is waited for, as the warehouse's own connections wait (``lock_timeout_seconds``)."""
    with wh.connect(read_only=True) as con:
        total, small = row_groups(con)
        version = storage_version(con)
    size = os.path.getsize(wh.path)
    if small <= min_small_row_groups:
        return Compaction(total, total, small, size, size, rewritten=False)
    # A run may take the file after the count: a failed attach of it leaves nothing behind.
    before, after = waiting_for_lock(
        lambda: rewrite_file(wh.path, COMPACT_ROW_GROUP_SIZE, version), wh.lock_timeout_seconds
    )
    with wh.connect(read_only=True) as con:
        groups, _ = row_groups(con)
    return Compaction(total, groups, small, before, after, rewritten=True)
