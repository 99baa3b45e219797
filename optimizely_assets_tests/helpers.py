from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from dagster import DagsterInstance, ExecuteInProcessResult

from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.instance import atomic_slot_claims
from optimizely_assets.runs import console_log_level
from optimizely_assets.settings import Settings

QUIET = console_log_level("ERROR")


def local_settings(local_dir: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"OPTIMIZELY_LOCAL_DIR": str(local_dir), "OPTIMIZELY_START_DATE": "2024-01-01", **env}
    )


def run_day(
    settings: Settings, day: dt.date, instance: DagsterInstance, resources: dict | None = None
) -> ExecuteInProcessResult:
    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    return job.execute_in_process(
        partition_key=day.isoformat(),
        instance=atomic_slot_claims(instance),  # as the project's executor does (instance.py)
        raise_on_error=False,
        run_config=QUIET,
        resources=resources,
    )


def checks_of(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def all_clean(result: ExecuteInProcessResult) -> bool:
    """Every check passed, but for the synthetic export's deliberate SRM experiment (a warning)."""
    return all(v for k, v in checks_of(result).items() if not k.endswith(":sample_ratio_mismatch"))


def materialized_of(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")  # as the warehouse does: the test process's TZ is any
        return con.execute(sql, params or []).fetchall()


def table_counts(settings: Settings) -> dict[str, tuple]:
    out = {}
    for t in ("decisions_raw", "decisions", "events_raw", "events"):
        out[t] = query(settings, f"SELECT count(*), count(DISTINCT uuid) FROM {t}")[0]
    return out
