"""``optimizely-assets``: run the pipeline on the embedded default, generate data, run checks.

optimizely-assets demo        # generate days, materialize every asset, print rows + checks
optimizely-assets generate    # only write a synthetic export into the local source dir
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import os
import shutil
import sys
from pathlib import Path

from optimizely_assets.analysis.report import NoResultsError
from optimizely_assets.demo.local_dir import DemoError, generate, reset_demo_dir
from optimizely_assets.demo.synthetic import ExportSpec, date_range
from optimizely_assets.privacy.visitors import SaltMissingError, VisitorIdError
from optimizely_assets.resources.optimizely_auth import CredentialsError
from optimizely_assets.runs import print_summary, run_checks, run_days
from optimizely_assets.settings import Settings, SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent


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


class CliError(Exception):
    """Printed as one line, exit status 2."""


def check_days(settings: Settings, days: list[dt.date], today: dt.date, partitioned: bool) -> None:
    """The days must be daily partitions: from OPTIMIZELY_START_DATE to today (UTC)."""
    start = dt.date.fromisoformat(settings.start_date)
    if partitioned and days[0] < start:
        raise CliError(
            f"--start {days[0]} is before OPTIMIZELY_START_DATE ({start}), where the partitions begin"
        )
    if partitioned and days[-1] > today:
        raise CliError(
            f"--start {days[0]} with --days {len(days)} ends on {days[-1]}, after today ({today}, UTC)"
        )


def check_local_dir(settings: Settings) -> None:
    """OPTIMIZELY_LOCAL_DIR must be a directory this process can write, or one it can create."""
    path = settings.local_dir
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise CliError(f"OPTIMIZELY_LOCAL_DIR={path}: {parent} is a file, not a directory")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"OPTIMIZELY_LOCAL_DIR={path}: {parent} is not writable by this user")


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of days >= 1, got {value!r}")
    return int(value)


def iso_day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date as YYYY-MM-DD, got {value!r}") from None


def parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    root = argparse.ArgumentParser(prog="optimizely-assets", formatter_class=fmt)
    sub = root.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", formatter_class=fmt, help="generate days, materialize every asset, print rows and checks"
    )
    gen = sub.add_parser(
        "generate",
        formatter_class=fmt,
        help="write a synthetic export into the local source directory (existing days are kept)",
    )
    sub.add_parser(
        "preflight",
        formatter_class=fmt,
        help="check these settings end to end, in minutes (credentials, listing, staging, dataset, dry runs, one real load); exit 1 on a failure",
    )
    chk = sub.add_parser(
        "checks",
        formatter_class=fmt,
        help="re-evaluate the per-day checks on loaded days; exit 1 on a failure",
    )
    for p in (demo, gen, chk):
        p.add_argument("--days", type=positive_int, default=3, help="number of consecutive days")
        p.add_argument(
            "--start",
            type=iso_day,
            default=None,
            help="first day, YYYY-MM-DD; when omitted, the days ending yesterday (UTC)",
        )
    for p in (demo, gen):
        p.add_argument(
            "--decisions-per-day",
            type=positive_int,
            default=ExportSpec.decisions_per_day,
            help="decision rows per generated day",
        )
        p.add_argument(
            "--events-per-day",
            type=positive_int,
            default=ExportSpec.events_per_day,
            help="conversion rows per generated day",
        )
    res = sub.add_parser(
        "results",
        formatter_class=fmt,
        help="print experiment results: rates, then per variation and metric the lift, its 95%% CI, "
        "p and sequential p (* significant after FDR), and SRM",
    )
    res.add_argument("--experiment", default=None, help="an experiment id; all experiments when omitted")
    fgt = sub.add_parser(
        "forget",
        formatter_class=fmt,
        help="delete every row and staged file of some visitors, and keep them out of later loads",
    )
    fgt.add_argument("--visitor-id", action="append", default=[], help="a visitor id (repeatable)")
    fgt.add_argument("--file", type=Path, default=None, help="a file of visitor ids, one per line")
    fgt.add_argument("--dry-run", action="store_true", help="count rows, files and bytes; change nothing")
    rep = sub.add_parser(
        "report",
        formatter_class=fmt,
        help="write one experiment's results as a self-contained HTML page (forest plots, cumulative lift)",
    )
    rep.add_argument("--experiment", required=True, help="the experiment id")
    rep.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    plan = sub.add_parser(
        "plan-backfill",
        formatter_class=fmt,
        help="estimate a backfill from the source listing: jobs, time, egress, bytes; quota warnings",
    )
    plan.add_argument("--start", type=iso_day, required=True, help="first day, YYYY-MM-DD")
    plan.add_argument("--end", type=iso_day, required=True, help="last day, YYYY-MM-DD (included)")
    plan.add_argument("--parallel-runs", type=positive_int, default=4, help="runs at once (dagster.yaml)")
    plan.add_argument("--copy-mb-per-s", type=float, default=80.0, help="measured copy throughput per run")
    plan.add_argument("--run-overhead-s", type=float, default=60.0, help="per run, besides the copy")
    demo.add_argument(
        "--keep", action="store_true", help="keep the previous demo's source, warehouse and runs"
    )
    return root


def checks(settings: Settings, days: list[dt.date]) -> int:
    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise CliError(
            f"nothing is loaded under {settings.local_dir}: run `optimizely-assets demo` first, or "
            "materialize the days in the UI (`make dev`)"
        )
    ensure_dagster_home(settings)
    results = run_checks(settings, days)
    for r in results:
        status = "PASS" if r["passed"] else ("WARN" if r["severity"] == "WARN" else "FAIL")
        print(f"{status}  {r['day']}  {r['check']:<55} {r['description']}")
    # A warning (the SRM check, lateness, drift) is printed; only a failed error-severity check fails.
    return 0 if all(r["passed"] or r["severity"] == "WARN" for r in results) else 1


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "preflight":
        from optimizely_assets.preflight import run_preflight

        return run_preflight(settings)
    if args.command == "plan-backfill":
        from optimizely_assets.planning import plan_backfill

        if args.end < args.start:
            raise CliError(f"--end {args.end} is before --start {args.start}")
        days = date_range(args.start, (args.end - args.start).days + 1)
        print(plan_backfill(settings, days, args.parallel_runs, args.copy_mb_per_s, args.run_overhead_s))
        return 0
    if args.command == "results":
        from optimizely_assets.analysis.report import results_text

        print(results_text(settings, args.experiment))
        return 0
    if args.command == "forget":
        from optimizely_assets.privacy import cli as forget_cli
        from optimizely_assets.privacy.visitors import read_id_file, validate

        ids = validate(args.visitor_id, "--visitor-id") if args.visitor_id else []
        ids += read_id_file(args.file) if args.file else []
        if not ids:
            raise CliError("give --visitor-id ID (repeatable) or --file ids.txt")
        if args.dry_run:
            print(forget_cli.dry_run(settings, ids))
            return 0
        ensure_dagster_home(settings)
        ok, text = forget_cli.forget_now(settings, ids)
        print(text, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if args.command == "report":
        from optimizely_assets.analysis.report import write_report

        print(f"wrote {write_report(settings, args.experiment, args.out)}")
        return 0
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    first = args.start or max(
        yesterday - dt.timedelta(days=args.days - 1), dt.date.fromisoformat(settings.start_date)
    )
    days = date_range(first, args.days)
    check_days(settings, days, yesterday + dt.timedelta(days=1), args.command == "checks")
    check_local_dir(settings)
    if args.command == "checks":
        return checks(settings, days)
    spec = ExportSpec(
        account_id=settings.account_id or ExportSpec.account_id,
        decisions_per_day=args.decisions_per_day,
        events_per_day=args.events_per_day,
    )
    if args.command == "demo" and settings.source == "local" and not args.keep:
        reset_demo_dir(settings)
    if args.command == "generate" or settings.source == "local":
        generate(settings, days, spec)
    if args.command == "generate":
        return 0
    if settings.source == "local" and not os.environ.get("OPTIMIZELY_START_DATE", "").strip():
        settings = Settings.from_env()  # the partitions start at the first day now under source/
    check_days(settings, days, yesterday + dt.timedelta(days=1), True)
    ensure_dagster_home(settings)
    rows = run_days(settings, days)
    print_summary(rows)
    from optimizely_assets.analysis.report import results_text

    print("\nexperiment results (`optimizely-assets results --experiment ID` for one):")
    print(results_text(settings, inference=False).split("\n\n", 1)[-1])
    if settings.source == "local":  # the synthetic export's two stories: an effect, and none
        from optimizely_assets.analysis.report import headlines
        from optimizely_assets.demo.experiments import EFFECT_EXPERIMENT, NO_EFFECT_EXPERIMENT

        print("\nlift against control (`optimizely-assets report --experiment ID --out FILE.html` draws it):")
        print(headlines(settings, [EFFECT_EXPERIMENT, NO_EFFECT_EXPERIMENT]))
    failed = [r for r in rows if not r["run_ok"] or not all(r.get("checks", {}).values())]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (
        CliError,
        DemoError,
        SettingsError,
        CredentialsError,
        NoResultsError,
        VisitorIdError,
        SaltMissingError,
    ) as exc:
        print(f"optimizely-assets {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(
            f"optimizely-assets {args.command}: no space left on device: {exc.filename or exc}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
