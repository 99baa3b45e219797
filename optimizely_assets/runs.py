"""In-process runs for the CLI: the daily job over days (``demo``), its checks alone (``checks``)."""

from __future__ import annotations

import datetime as dt

from optimizely_assets.concurrency import free_slots_of_dead_runs
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.settings import Settings


def console_log_level(level: str) -> dict:
    """Run config that keeps an in-process run's console at ``level``."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def run_days(settings: Settings, days: list[dt.date], log_level: str = "ERROR") -> list[dict]:
    """Materialize the daily job for each day; return one summary row per (type, day)."""
    from dagster import DagsterInstance

    from optimizely_assets.automation import catch_up
    from optimizely_assets.definitions import DAILY_JOB, build_definitions

    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    instance = DagsterInstance.get()
    summary: list[dict] = []
    # The automation daemon's ticks, between the days; it also makes the slot claims atomic.
    cursor, _ = catch_up(defs, instance)
    for day in days:
        free_slots_of_dead_runs(instance)  # a killed earlier run must not hold a pool slot forever
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            run_config=console_log_level(log_level),
        )
        cursor = catch_up(defs, instance, cursor)[0] if result.success else cursor  # late rows
        for export_type in ExportType:
            row = {"type": export_type.value, "day": day.isoformat(), "run_ok": result.success}
            for mat in result.asset_materializations_for_node(f"{export_type.value}__source_files"):
                row["source_rows"] = mat.metadata["dagster/row_count"].value
                row["files"] = mat.metadata["files"].value
            for mat in result.asset_materializations_for_node(f"{export_type.value}__raw_table"):
                row["raw_rows"] = mat.metadata["dagster/row_count"].value
            for mat in result.asset_materializations_for_node(f"{export_type.value}__canonical"):
                row.update(
                    inserted=mat.metadata["inserted"].value,
                    already_present=mat.metadata["already_in_canonical"].value,
                )
            checks = [
                e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == export_type.value
            ]
            row["checks"] = {c.check_name: c.passed for c in checks}
            summary.append(row)
    return summary


def _why(result) -> str:
    """One line on why a day's checks did not run."""
    failures = [e for e in result.all_events if e.is_step_failure]
    if not failures:
        return "no check ran"
    error = failures[0].step_failure_data.error
    chain = [error]
    while chain[-1].cause is not None:  # Dagster wraps the cause: "Error occurred while executing op"
        chain.append(chain[-1].cause)
    text = "\n".join(f"{e.cls_name}: {e.message}" for e in chain)
    if any(m in text for m in ("FileNotFoundError", "No such file", "while loading input")):
        return "the day was never loaded here: run `optimizely-assets demo`, or materialize the day first"
    cause = chain[-1]
    first = (cause.message.strip().splitlines() or [""])[0]
    said = first if cause.cls_name in first else f"{cause.cls_name}: {first}"
    return f"{failures[0].step_key}: {said}"[:300]


def run_checks(settings: Settings, days: list[dt.date], log_level: str = "CRITICAL") -> list[dict]:
    """Evaluate the per-day checks against what is loaded; one row per check and day."""
    from dagster import DagsterInstance

    from optimizely_assets.definitions import DAILY_JOB, build_definitions

    defs = build_definitions(settings)
    # The daily job narrowed to its checks: nothing is materialized, every check runs.
    check_keys = set(defs.resolve_asset_graph().asset_check_keys)
    job = defs.resolve_job_def(DAILY_JOB).get_subset(asset_selection=set(), asset_check_selection=check_keys)
    rows: list[dict] = []
    for day in days:
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            instance=DagsterInstance.get(),
            raise_on_error=False,
            run_config=console_log_level(log_level),
        )
        evaluations = result.get_asset_check_evaluations()
        # A check that did not evaluate is a failure: a day never loaded must not read as clean.
        missing = len(check_keys) - len({(e.asset_key, e.check_name) for e in evaluations})
        if missing:
            why = f"{missing} of {len(check_keys)} checks did not run: {_why(result)}"
            rows.append(
                {
                    "day": day.isoformat(),
                    "check": "(run)",
                    "passed": False,
                    "severity": "ERROR",
                    "description": why,
                }
            )
        for e in evaluations:
            rows.append(
                {
                    "day": day.isoformat(),
                    "check": f"{e.asset_key.to_user_string()}:{e.check_name}",
                    "passed": e.passed,
                    "severity": e.severity.value,  # WARN: reported, never a failure
                    "description": e.description or "",
                }
            )
    return rows


def print_summary(rows: list[dict]) -> None:
    header = (
        f"{'type':<10} {'day':<10} {'files':>5} {'source':>8} {'raw':>8} {'inserted':>8} {'dupes':>6}  checks"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        checks = r.get("checks", {})
        ok = sum(checks.values())
        status = f"{ok}/{len(checks)} passed" + (
            "" if ok == len(checks) else "  FAILED: " + ", ".join(k for k, v in checks.items() if not v)
        )
        print(
            f"{r['type']:<10} {r['day']:<10} {r.get('files', '-'):>5} {r.get('source_rows', '-'):>8} "
            f"{r.get('raw_rows', '-'):>8} {r.get('inserted', '-'):>8} {r.get('already_present', '-'):>6}  {status}"
        )
