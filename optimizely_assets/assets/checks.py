"""Per-day data-quality checks: the proof that a loaded day is complete.

Each check is evaluated in the step of the asset it checks, from what that step already holds:
- ``source_files``: schema drift, from the manifest it just built;
- ``raw_table``: raw rows against the footers (counted by the load itself, in its transaction) and
  freshness; its blocking checks stop the MERGE of a day that does not match its source;
- ``canonical``: every key present, no duplicate uuid, nothing raw lacks, after the MERGE.
Run alone (the UI, the ``checks`` CLI), the same functions read the loaded day, and drift lists the
source again.
"""

import datetime as dt
from collections.abc import Callable, Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
)

from optimizely_assets.assets.keys import CANONICAL, MARKER_CHECK, RAW_TABLE, SOURCE_FILES, key
from optimizely_assets.assets.metadata import md_table, sorted_keys
from optimizely_assets.e3.layout import ExportType, day_prefix, is_data_file, success_key
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.privacy.staged import DaySuppression
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.warehouse.base import CanonicalFindings, DaySummary


def _names(keys) -> str:
    return ", ".join("NULL" if k is None else str(k) for k in keys)


def expected_rows(manifest: DayManifest, suppressed: DaySuppression) -> tuple[int, dict | None]:
    """The footers' rows, total and per key, less the forgotten visitors' rows the staging removed."""
    by_key = manifest.rows_by_key()
    if by_key is not None and suppressed.rows:
        by_key = dict(by_key)
        for k, n in suppressed.by_key:
            by_key[k] = by_key.get(k, 0) - n
    return manifest.rows - suppressed.rows, by_key


def rows_match(
    export_type: ExportType,
    day: dt.date,
    manifest: DayManifest,
    raw: DaySummary,
    suppressed: DaySuppression = DaySuppression(),
) -> AssetCheckResult:
    col = export_type.key_column
    total, expected = expected_rows(manifest, suppressed)
    expected = expected or {}
    off = {
        k: f"source {expected.get(k, 0):,} / raw {raw.key_rows.get(k, 0):,}"
        for k in sorted_keys(dict.fromkeys(set(expected) | set(raw.key_rows), 0))
        if expected and expected.get(k, 0) != raw.key_rows.get(k, 0)
    }
    passed = raw.rows == total and not off
    return AssetCheckResult(
        asset_key=key(export_type, RAW_TABLE),
        check_name="rows_match_source_footers",
        passed=passed,
        description=(
            f"{export_type.value} {day}: {raw.rows:,} raw rows, {manifest.rows:,} in source footers"
            + (f" less {suppressed.rows:,} of forgotten visitors" if suppressed.rows else "")
            + ("" if passed else f"; {len(off)} {col}(s) differ")
        ),
        metadata={
            "source_rows": manifest.rows,
            "suppressed_rows": suppressed.rows,
            "raw_rows": raw.rows,
            "difference": raw.rows - total,
            **(
                {f"{col}s_differing": MetadataValue.md(md_table((col, "rows"), list(off.items())))}
                if off
                else {}
            ),
        },
    )


def all_present(
    export_type: ExportType,
    day: dt.date,
    manifest: DayManifest,
    raw: DaySummary,
    found: CanonicalFindings,
    suppressed: DaySuppression = DaySuppression(),
) -> AssetCheckResult:
    col = export_type.key_column
    expected = expected_rows(manifest, suppressed)[1] or {}
    missing_raw = list(sorted_keys({k: n for k, n in expected.items() if n and k not in raw.key_rows}))
    missing_canonical = sorted_keys(found.missing)
    passed = not missing_raw and not missing_canonical
    desc = f"{export_type.value} {day}: {len(expected)} {col}s in source"
    if missing_raw:
        desc += f"; missing from raw: {_names(missing_raw[:20])}"
    if missing_canonical:
        desc += f"; uuids missing from canonical for: {_names(list(missing_canonical)[:20])}"
    return AssetCheckResult(
        asset_key=key(export_type, CANONICAL),
        check_name=f"every_source_{export_type.partition_column}_in_warehouse",
        passed=passed,
        description=desc,
        metadata={
            f"source_{col}s": len(expected),
            "missing_from_raw": MetadataValue.json(missing_raw),
            "per_key_comparison": "on"
            if manifest.rows_by_key() is not None
            else "off: files without statistics",
            "uuids_missing_from_canonical": sum(missing_canonical.values()),
            **(
                {"missing_by_" + col: MetadataValue.md(md_table((col, "uuids"), missing_canonical))}
                if missing_canonical
                else {}
            ),
        },
    )


def no_duplicates(export_type: ExportType, day: dt.date, found: CanonicalFindings) -> AssetCheckResult:
    dups, unkeyed = found.duplicates, found.unkeyed
    desc = "no duplicate uuids" if not dups else f"{len(dups)}+ duplicated uuids, e.g. {dups[0][0]}"
    if unkeyed:  # the probe compares keys: a row without its key is a duplicate no probe can see
        desc += (
            f"; {unkeyed:,} canonical row(s) of the dedup window have no uuid_key or not their uuid's "
            "(written by another tool?): fill them with the migration's UPDATE (README, Upgrading)"
        )
    return AssetCheckResult(
        asset_key=key(export_type, CANONICAL),
        check_name="no_duplicate_uuids",
        passed=not dups and not unkeyed,
        description=f"{export_type.value} {day}: {desc}",
        metadata={
            "duplicated_uuids": len(dups),
            "examples": MetadataValue.json([u for u, _ in dups[:5]]),
            "rows_without_their_uuid_key": unkeyed,
        },
    )


def matches_raw(export_type: ExportType, day: dt.date, found: CanonicalFindings) -> AssetCheckResult:
    n, examples = found.not_in_raw, list(found.not_in_raw_examples)
    return AssetCheckResult(
        asset_key=key(export_type, CANONICAL),
        check_name="canonical_day_within_raw_day",
        passed=not n,
        description=f"{export_type.value} {day}: "
        + (
            "every canonical uuid of the day is in raw's day"
            if not n
            else f"{n:,} canonical row(s) of the day have a uuid raw's day no longer has, e.g. {examples[0]}; "
            "re-run the day"
        ),
        metadata={"uuids_not_in_raw": n, "examples": MetadataValue.json(examples[:5])},
    )


def drift(export_type: ExportType, manifest: DayManifest) -> AssetCheckResult:
    added, nested = manifest.added_columns, manifest.added_nested
    bad = [q.key for q in manifest.quarantined]
    parts = [f"new columns {', '.join(added)}"] if added else []
    parts += [f"new fields inside columns {', '.join(nested)}"] if nested else []
    parts += [f"{len(bad)} file(s) quarantined: {', '.join(bad[:5])}"] if bad else []
    return AssetCheckResult(
        asset_key=key(export_type, SOURCE_FILES),
        check_name="schema_drift",
        passed=not parts,
        severity=AssetCheckSeverity.WARN,
        description=f"{export_type.value} {manifest.day}: " + ("; ".join(parts) or "schema as expected"),
        metadata={
            "added_columns": MetadataValue.json(added),
            "added_nested_fields": MetadataValue.json(nested),
            "quarantined": MetadataValue.json(
                [{"key": q.key, "reason": q.reason} for q in manifest.quarantined]
            ),
        },
    )


def fresh(
    export_type: ExportType, day: dt.date, manifest: DayManifest, source: ExportSource, loader: LoaderConfig
) -> AssetCheckResult:
    marker = source.head(success_key(source.root, export_type, day))
    now = dt.datetime.now(dt.timezone.utc)
    listed = manifest.success_etag
    changed = marker is not None if listed is None else (marker is None or marker.etag != listed)
    loaded_files = {(f.key, f.size, f.etag) for f in (*manifest.files, *manifest.quarantined)}
    prefix = day_prefix(source.root, export_type, day)
    now_files = {(o.key, o.size, o.etag) for o in source.list_objects(prefix) if is_data_file(o.key)}
    files_changed = sorted({k for k, *_ in loaded_files ^ now_files})
    changed = changed or bool(files_changed)
    lag_h = (
        (now - manifest.success_last_modified).total_seconds() / 3600
        if manifest.success_last_modified
        else None
    )
    # Only recent days can be late: a backfill of last year is not a freshness problem.
    recent = (now.date() - day).days <= loader.freshness_sla_hours / 24 + 1
    late = recent and lag_h is not None and lag_h > loader.freshness_sla_hours
    if files_changed:
        desc = (
            f"{export_type.value} {day}: {len(files_changed)} file(s) added, removed or rewritten since "
            f"the load (e.g. {files_changed[0]}); re-run the day"
        )
    elif changed:
        desc = f"{export_type.value} {day}: _SUCCESS changed since the load; re-run the day"
    elif late:
        desc = f"{export_type.value} {day}: checked {lag_h:.1f} h after _SUCCESS (SLA {loader.freshness_sla_hours} h)"
    else:
        desc = f"{export_type.value} {day}: loaded data matches the current _SUCCESS"
    return AssetCheckResult(
        asset_key=key(export_type, RAW_TABLE),
        check_name="fresh_after_success",
        passed=not changed and not late,
        # A day changed since it was listed fails the run (ERROR); a late load only warns (WARN).
        severity=AssetCheckSeverity.ERROR if changed else AssetCheckSeverity.WARN,
        description=desc,
        metadata={
            "marker_at_load": manifest.success_last_modified.isoformat()
            if manifest.success_last_modified
            else "absent",
            "marker_now": marker.last_modified.isoformat() if marker else "absent",
            "hours_since_marker": round(lag_h, 2) if lag_h is not None else -1.0,
            "files_changed": MetadataValue.json(files_changed[:20]),
        },
    )


def evaluate_selected(
    context: AssetExecutionContext, results: dict[str, Callable[[], AssetCheckResult]]
) -> Iterator[AssetCheckResult]:
    """Evaluate only the checks the run selected: a run of one check evaluates that one alone."""
    names = {k.name for k in context.selected_asset_check_keys}
    for name, evaluate in results.items():
        if name in names:
            yield evaluate()


def marker_check(export_type: ExportType, day: dt.date, present: bool, required: bool) -> AssetCheckResult:
    """Has the day's _SUCCESS been delivered? Evaluated in the source_files step (from its listing,
    or, run alone, from the source now); the sensor records a failure for a day it gave up on (no
    marker within the dedup horizon)."""
    if not present and not required:  # a source without markers, on purpose
        return AssetCheckResult(
            asset_key=key(export_type, SOURCE_FILES),
            check_name=MARKER_CHECK,
            passed=True,
            description=f"type={export_type.value} date={day}: no _SUCCESS, not required "
            "(the loader's require_success is off)",
        )
    return marker_result(export_type, day, present)


def marker_text(export_type: ExportType, day: dt.date, present: bool, waited: str = "") -> str:
    return f"type={export_type.value} date={day}: " + (
        "_SUCCESS delivered" if present else f"no _SUCCESS{waited}; the day is not loaded"
    )


def marker_result(export_type: ExportType, day: dt.date, present: bool) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=key(export_type, SOURCE_FILES),
        check_name=MARKER_CHECK,
        passed=present,
        description=marker_text(export_type, day, present),
        metadata={"day": day.isoformat()},
    )
