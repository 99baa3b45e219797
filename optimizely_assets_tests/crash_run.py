"""Run one day in this process and SIGKILL it at a chosen point: a real crash, no cleanup.

python -m optimizely_assets_tests.crash_run <local_dir> <day> <copy|load|merge|none> [persistent]

``persistent``: run against $DAGSTER_HOME's instance instead of an ephemeral one.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance

from optimizely_assets.resources.staging import LocalStaging
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets_tests.helpers import local_settings, run_day


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingStaging(LocalStaging):
    """Dies half-way through writing the third file."""

    def link(self, key, path, size):
        return False  # copy, so that put runs

    def put(self, key, stream, size, source_etag, source_key):
        count = int(os.environ.get("_CRASH_PUTS", "0")) + 1
        os.environ["_CRASH_PUTS"] = str(count)
        if count == 3:
            path = Path(self.root_dir) / self.prefix / key
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / f".tmp-crash-{path.name}").write_bytes(stream.read(size // 2))
            die()
        return super().put(key, stream, size, source_etag, source_key)


class _Con:
    def __init__(self, con, trigger: str):
        self._con, self._trigger = con, trigger

    def execute(self, sql, *args):
        result = self._con.execute(sql, *args)
        if self._trigger in sql:
            die()  # the statement ran inside the open transaction; COMMIT never comes
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


class CrashingWarehouse(DuckDBWarehouse):
    trigger: str

    @contextmanager
    def connect(self, read_only: bool = False):
        with super().connect(read_only) as con:
            yield _Con(con, self.trigger)


def main(local_dir: str, day: str, point: str, instance_kind: str = "ephemeral") -> None:
    import datetime as dt

    settings = local_settings(Path(local_dir))
    resources = {}
    if point == "copy":
        resources["staging"] = CrashingStaging(root_dir=str(settings.local_staging_dir))
    elif point in ("load", "merge"):
        trigger = "INSERT INTO decisions_raw" if point == "load" else "INSERT INTO decisions ("
        resources["warehouse"] = CrashingWarehouse(path=str(settings.duckdb_path), trigger=trigger)
    instance = DagsterInstance.get() if instance_kind == "persistent" else DagsterInstance.ephemeral()
    result = run_day(settings, dt.date.fromisoformat(day), instance, resources=resources or None)
    sys.exit(0 if result.success else 1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
