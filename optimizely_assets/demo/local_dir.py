"""The embedded default's local directory, as the demo and `generate` manage it."""

from __future__ import annotations

import datetime as dt
import shutil

from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import ExportType, account_prefix, success_key
from optimizely_assets.settings import Settings


class DemoError(Exception):
    """Printed by the CLI as one line."""


DEMO_MARKER = ".optimizely-demo"  # the demo deletes only a directory that holds this file
DEMO_DATA = ("source", "staging", "dagster_io", "warehouse.duckdb", "warehouse.duckdb.wal")


def reset_demo_dir(settings: Settings) -> None:
    """Start the demo clean, deleting only what an earlier demo created; never the Dagster home."""
    local = settings.local_dir
    if local.exists() and any(local.iterdir()) and not (local / DEMO_MARKER).exists():
        raise DemoError(
            f"{local} holds files the demo did not create; set OPTIMIZELY_LOCAL_DIR to a new directory, "
            "or pass --keep to add to it"
        )
    local.mkdir(parents=True, exist_ok=True)
    (local / DEMO_MARKER).write_text("created by optimizely-assets demo\n")
    for name in DEMO_DATA:
        path = local / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def generate(settings: Settings, days: list[dt.date], spec: ExportSpec) -> None:
    """Write the (type, day)s the source lacks; one already there keeps its files and its _SUCCESS.

    Per type: rewriting a complete type of a half-written day would add a second set of files
    (another Spark job uuid) and double its rows.
    """
    if settings.source != "local":
        raise DemoError("generate writes a local export; unset OPTIMIZELY_PAT and OPTIMIZELY_SOURCE")
    root = settings.local_source_dir
    prefix = account_prefix(spec.account_id)
    kept = sum(all((root / success_key(prefix, t, d)).exists() for t in ExportType) for d in days)
    written = []
    for t in ExportType:
        missing = [d for d in days if not (root / success_key(prefix, t, d)).exists()]
        written += write_export(root, missing, spec, types=[t]) if missing else []
    print(
        f"wrote {sum(w.rows for w in written):,} rows in {sum(len(w.files) for w in written)} files under {root}"
        + (f"; kept {kept} day(s) already there" if kept else "")
    )
