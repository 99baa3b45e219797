"""``optimizely-assets``: run the pipeline on the embedded default, generate data, run checks.

optimizely-assets demo        # generate days, materialize every asset, print rows + checks
optimizely-assets generate    # only write a synthetic export into the local source dir
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from optimizely_assets.layout import ExportType
from optimizely_assets.settings import Settings
from optimizely_assets.synthetic import ExportSpec, date_range, write_export

REPO_ROOT = Path(__file__).resolve().parent.parent


def console_log_level(level: str) -> dict:
    """Run config that keeps an in-process run's console at ``level``."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def ensure_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or a home under the local dir that links the repo's dagster.yaml."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.local_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = REPO_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if config.is_file() and not target.exists():
        shutil.copyfile(config, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_days(settings: Settings, days: list[dt.date], log_level: str = "WARNING") -> list[dict]:
    """Materialize the daily job for each day; return one summary row per (type, day)."""
    from dagster import DagsterInstance

    from optimizely_assets.definitions import DAILY_JOB, build_definitions

    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    instance = DagsterInstance.get()
    summary: list[dict] = []
    for day in days:
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            run_config=console_log_level(log_level),
        )
        for export_type in ExportType:
            row = {"type": export_type.value, "day": day.isoformat(), "run_ok": result.success}
            for mat in result.asset_materializations_for_node(f"{export_type.value}__source_files"):
                row["source_rows"] = mat.metadata["dagster/row_count"].value
                row["files"] = mat.metadata["files"].value
            for mat in result.asset_materializations_for_node(f"{export_type.value}__raw_table"):
                row["raw_rows"] = mat.metadata["dagster/row_count"].value
            for mat in result.asset_materializations_for_node(f"{export_type.value}__canonical"):
                row["inserted"] = mat.metadata["inserted"].value
                row["already_present"] = mat.metadata["already_in_canonical"].value
            checks = [
                e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == export_type.value
            ]
            row["checks"] = {c.check_name: c.passed for c in checks}
            summary.append(row)
    return summary


def run_checks(settings: Settings, days: list[dt.date], log_level: str = "WARNING") -> list[dict]:
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
        if not evaluations:
            rows.append(
                {
                    "day": day.isoformat(),
                    "check": "(run)",
                    "passed": False,
                    "description": "checks did not run",
                }
            )
        for e in evaluations:
            rows.append(
                {
                    "day": day.isoformat(),
                    "check": f"{e.asset_key.to_user_string()}:{e.check_name}",
                    "passed": e.passed,
                    "description": e.description or "",
                }
            )
    return rows


def run_preflight(settings: Settings) -> int:
    from dagster import build_resources as initialize

    from optimizely_assets.definitions import build_resources
    from optimizely_assets.preflight import Preflight

    wanted = {k: v for k, v in build_resources(settings).items() if k != "io_manager"}
    # Initialized as a run would: EnvVar("OPTIMIZELY_PAT") is resolved here, never printed.
    with initialize(wanted) as r:
        optimizely = getattr(r.source, "optimizely", None)

        def credentials() -> str:
            c = optimizely.fetch()
            return f"account {c.account_id}, s3://{c.bucket}/{c.prefix}, expires {c.expiration:%H:%M} UTC"

        steps = Preflight(
            source=r.source,
            staging=r.staging,
            warehouse=r.warehouse,
            horizon_days=r.loader.dedup_horizon_days,
            credentials_check=credentials if optimizely is not None else None,
        ).run()
    for s in steps:
        print(f"{'ok  ' if s.ok else 'FAIL'}  {s.name:<34} {s.seconds:5.1f}s  {s.detail}")
    return 0 if all(s.ok for s in steps) else 1


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optimizely-assets")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate days, materialize all assets, print rows and checks")
    gen = sub.add_parser("generate", help="write a synthetic export into the local source directory")
    sub.add_parser(
        "preflight",
        help="check credentials, source listing, staging, dataset, every query (dry run) and one real "
        "load with these settings; exit 1 on a failure",
    )
    chk = sub.add_parser("checks", help="re-evaluate the per-day checks on loaded days; exit 1 on a failure")
    chk.add_argument("--days", type=int, default=3)
    chk.add_argument("--start", type=dt.date.fromisoformat, default=None)
    for p in (demo, gen):
        p.add_argument("--days", type=int, default=3)
        p.add_argument("--start", type=dt.date.fromisoformat, default=None)
        p.add_argument("--decisions-per-day", type=int, default=ExportSpec.decisions_per_day)
        p.add_argument("--events-per-day", type=int, default=ExportSpec.events_per_day)
    demo.add_argument("--keep", action="store_true", help="keep the previous local warehouse and runs")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "preflight":
        return run_preflight(settings)
    start = args.start or dt.date.fromisoformat(settings.start_date)
    days = date_range(start, args.days)
    if args.command == "checks":
        ensure_dagster_home(settings)
        results = run_checks(settings, days)
        for r in results:
            print(f"{'PASS' if r['passed'] else 'FAIL'}  {r['day']}  {r['check']:<55} {r['description']}")
        return 0 if all(r["passed"] for r in results) else 1
    spec = ExportSpec(
        account_id=settings.account_id or ExportSpec.account_id,
        decisions_per_day=args.decisions_per_day,
        events_per_day=args.events_per_day,
    )
    if args.command == "generate" or settings.source == "local":
        if settings.source != "local":
            print("generate writes a local export; unset OPTIMIZELY_PAT / OPTIMIZELY_SOURCE", file=sys.stderr)
            return 2
        if args.command == "demo" and not args.keep and settings.local_dir.exists():
            shutil.rmtree(settings.local_dir)
        written = write_export(settings.local_source_dir, days, spec)
        print(
            f"wrote {sum(w.rows for w in written):,} rows in {sum(len(w.files) for w in written)} files "
            f"under {settings.local_source_dir}"
        )
    if args.command == "generate":
        return 0
    ensure_dagster_home(settings)
    rows = run_days(settings, days)
    print_summary(rows)
    failed = [r for r in rows if not r["run_ok"] or not all(r.get("checks", {}).values())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
