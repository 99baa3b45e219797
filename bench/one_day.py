"""Materialize one day in this process (run it in a fresh one to read its own peak RSS).

    python -m bench.one_day <local_dir> <YYYY-MM-DD> [worker|all]

``worker`` runs only what the worker does on the BigQuery path too: list, read footers,
stream the files to staging. ``all`` adds the embedded DuckDB warehouse (load, MERGE, checks).
"""

from __future__ import annotations

import datetime as dt
import sys

from dagster import DagsterInstance

from optimizely_assets.assets.keys import SOURCE_FILES, STAGED_FILES, key
from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.runs import console_log_level
from optimizely_assets.settings import Settings


def main(local_dir: str, day: str, stages: str = "all", instance: DagsterInstance | None = None) -> int:
    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": local_dir, "OPTIMIZELY_START_DATE": "2020-01-01"})
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    selection = None
    if stages == "worker":
        selection = [key(t, s) for t in ExportType for s in (SOURCE_FILES, STAGED_FILES)]
    result = job.execute_in_process(
        partition_key=dt.date.fromisoformat(day).isoformat(),
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=selection,
        run_config=console_log_level("ERROR"),
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
