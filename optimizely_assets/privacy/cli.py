"""`optimizely-assets forget`: queue the ids, run the `privacy/deletion_log` asset, print what went.

The ids go into ``deletion_requests`` and the same asset the UI runs processes them (one code
path). ``--dry-run`` touches nothing: rows per table, staged files holding them, and on BigQuery
the bytes each DELETE would bill.
"""

from __future__ import annotations

import datetime as dt

from optimizely_assets.settings import Settings


def _print_rows(rows: dict[str, int], verb: str) -> list[str]:
    return [f"  {table:<20} {n:>10,} rows {verb}" for table, n in sorted(rows.items())]


def _loaded(settings: Settings) -> None:
    from optimizely_assets.analysis.report import NoResultsError

    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise NoResultsError(f"nothing is loaded under {settings.local_dir}: nothing to forget")


def dry_run(settings: Settings, ids: list[str]) -> str:
    from optimizely_assets.definitions import build_resources
    from optimizely_assets.e3.layout import ExportType
    from optimizely_assets.preflight import human_size
    from optimizely_assets.privacy import forget
    from optimizely_assets.privacy.tables import PrivacyTables

    _loaded(settings)

    resources = build_resources(settings)
    tables = PrivacyTables(resources["warehouse"])
    tables.ensure()
    total = forget.Outcome()
    for export_type in ExportType:
        total.add(
            forget.forget_type(tables, resources["staging"], resources["source"].root, export_type, ids, True)
        )
    total.add(forget.forget_analysis(tables, ids, True))
    lines = [
        f"dry run: {len(ids)} visitor(s); nothing was changed",
        *_print_rows(total.rows, "would be deleted"),
    ]
    lines.append(f"  staged files holding them: {total.files}")
    lines += [f"  DELETE FROM {t}: would bill {human_size(b)}" for t, b in sorted(total.bytes_billed.items())]
    lines += [f"  could not count: {e}" for e in total.errors]
    return "\n".join(lines)


def forget_now(settings: Settings, ids: list[str]) -> tuple[bool, str]:
    from dagster import DagsterInstance

    from optimizely_assets.definitions import FORGET_JOB, build_definitions
    from optimizely_assets.instance import atomic_slot_claims
    from optimizely_assets.privacy.tables import PrivacyTables
    from optimizely_assets.runs import console_log_level

    _loaded(settings)
    defs = build_definitions(settings)
    tables = PrivacyTables(defs.resources["warehouse"])  # type: ignore[index]
    tables.ensure()
    tables.add_requests(ids, dt.datetime.now(dt.timezone.utc))
    result = defs.resolve_job_def(FORGET_JOB).execute_in_process(
        instance=atomic_slot_claims(DagsterInstance.get()),
        raise_on_error=False,
        run_config=console_log_level("ERROR"),
    )
    meta = {}
    for mat in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in mat.step_materialization_data.materialization.metadata.items()}
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        error = failure.step_failure_data.error if failure else None
        while error is not None and error.cause is not None:
            error = error.cause
        said = (error.message.strip().splitlines() or [""])[0] if error else "the run failed"
        return False, f"forget failed, the request stays open (re-run the command): {said[:400]}"
    lines = [f"forgot {len(ids)} visitor(s) ({meta.get('requests', 0)} request(s)):"]
    lines += _print_rows(meta.get("rows_removed", {}), "deleted")
    lines.append(f"  staged files rewritten or deleted: {meta.get('files_rewritten', 0)}")
    if "warehouse_file_bytes" in meta:
        lines.append(f"  warehouse file rewritten: {meta['warehouse_file_bytes']} bytes")
    lines.append("  results and metrics rebuilt; later loads skip them (forgotten_visitors)")
    return True, "\n".join(lines)
