"""After a forget, the embedded warehouse's file is written anew: deleted rows leave no bytes.

DuckDB marks deleted rows and frees blocks without overwriting them, so a deleted visitor's id can
stay in the file until its blocks are reused. The whole database is copied into a new file
(``COPY FROM DATABASE``, same storage version and row group size), which then replaces the old one;
the old file is checkpointed first, so no WAL is left to replay onto the new one. The old file stays
attached (its lock held) until the new one is in place.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from optimizely_assets.warehouse.duckdb_sql import text


def rewrite_file(path: str, row_group_size: int, storage_version: str | None) -> tuple[int, int]:
    """(bytes before, bytes after) of the database file."""
    before = os.path.getsize(path)
    new = f"{path}.rewrite"
    Path(new).unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a long copy would draw one into the logs
        con.execute(f"ATTACH {text(path)} AS old")
        con.execute("CHECKPOINT old")
        options = [f"ROW_GROUP_SIZE {int(row_group_size)}"]
        if storage_version:
            options.append(f"STORAGE_VERSION {text(storage_version)}")
        con.execute(f"ATTACH {text(new)} AS new ({', '.join(options)})")
        con.execute("COPY FROM DATABASE old TO new")
        con.execute("DETACH new")
        os.replace(new, path)
        con.execute("DETACH old")  # checkpointed, unchanged since: writes nothing
    finally:
        con.close()
        Path(new).unlink(missing_ok=True)
    return before, os.path.getsize(path)
