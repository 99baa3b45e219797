"""How the embedded warehouse opens its DuckDB file: attached to an in-memory host, with options."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from optimizely_assets.warehouse.duckdb_sql import text

ALIAS = "warehouse"  # the attached file's name inside each connection
T = TypeVar("T")


def waiting_for_lock(open_file: Callable[[], T], timeout_seconds: float) -> T:
    """``open_file()``, retried while another process holds the file's lock (DuckDB lets one
    process write a file; the others fail at once), with backoff, for up to ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.05
    while True:
        try:
            return open_file()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)


def attach(
    path: str, read_only: bool, row_group_size: int, storage_version: str | None
) -> duckdb.DuckDBPyConnection:
    """The file attached to an in-memory host, to give it a row group size (an ATTACH option).

    E3 rows are wide: at DuckDB's default (122,880) a row group of a 1 KB-per-row day is ~120 MB
    held per writing thread outside ``memory_limit``, and a day's last one is written at commit.
    At 16,384 rows the load and the MERGE write row groups as they go, in parallel (``bench/``).

    A new file gets ``storage_version``: on DuckDB's default (v1.0.0) a checkpoint rewrote the
    metadata of unchanged row groups too, so a day's cost grew with the history (bench/merge.py).
    Only at creation: ATTACH with a newer version upgrades an existing file for good, which
    would lock out a user's older DuckDB without asking.
    """
    con = duckdb.connect()
    try:
        options = ["READ_ONLY"] if read_only else [f"ROW_GROUP_SIZE {int(row_group_size)}"]
        if not read_only and storage_version and not Path(path).exists():
            options.append(f"STORAGE_VERSION {text(storage_version)}")
        con.execute(f"ATTACH {text(path)} AS {ALIAS} ({', '.join(options)})")
        con.execute(f"USE {ALIAS}")
        con.execute("SET enable_progress_bar = false")  # a long statement would draw one into the logs
        # An in-memory host would spill to ./.tmp; spill beside the file, as DuckDB does for one.
        con.execute(f"SET temp_directory = {text(path + '.tmp')}")
        if not read_only:
            # Checkpoint once the WAL (block pointers, partial row groups) passes 1 MB, not on
            # every close: each one costs ~0.2 s on a day's tables.
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
            con.execute("SET checkpoint_threshold = '1MB'")
    except BaseException:
        con.close()
        raise
    return con
