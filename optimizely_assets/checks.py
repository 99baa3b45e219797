"""Per-day data-quality checks: the proof that a loaded day is complete."""

import datetime as dt

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetIn,
    MetadataValue,
    asset_check,
)

from optimizely_assets.assets.factory import partition_day
from optimizely_assets.assets.keys import CANONICAL, RAW_TABLE, SOURCE_FILES, key
from optimizely_assets.assets.metadata import md_table, sorted_keys
from optimizely_assets.e3.layout import ExportType, day_prefix, is_data_file, success_key
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.warehouse import Warehouse


def _names(keys) -> str:
    return ", ".join("NULL" if k is None else str(k) for k in keys)


def rows_match_check(export_type: ExportType, partitions_def) -> AssetChecksDefinition:
    col = export_type.key_column
    source_in = {"manifest": AssetIn(key=key(export_type, SOURCE_FILES))}

    @asset_check(
        asset=key(export_type, RAW_TABLE),
        name="rows_match_source_footers",
        additional_ins=source_in,
        partitions_def=partitions_def,
        blocking=True,
        description=(
            f"Raw rows of the day == the Parquet footer row counts of its source files, in total and per "
            f"{col} (the files' own column, read from their footer statistics)."
        ),
    )
    def rows_match(
        context: AssetCheckExecutionContext, manifest: DayManifest, warehouse: Warehouse
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        raw = warehouse.raw_day(export_type, day)
        expected = manifest.rows_by_key() or {}
        off = {
            k: f"source {expected.get(k, 0):,} / raw {raw.key_rows.get(k, 0):,}"
            for k in sorted_keys(dict.fromkeys(set(expected) | set(raw.key_rows), 0))
            if expected and expected.get(k, 0) != raw.key_rows.get(k, 0)
        }
        passed = raw.rows == manifest.rows and not off
        return AssetCheckResult(
            passed=passed,
            description=(
                f"{export_type.value} {day}: {raw.rows:,} raw rows, {manifest.rows:,} in source footers"
                + ("" if passed else f"; {len(off)} {col}(s) differ")
            ),
            metadata={
                "source_rows": manifest.rows,
                "raw_rows": raw.rows,
                "difference": raw.rows - manifest.rows,
                **(
                    {f"{col}s_differing": MetadataValue.md(md_table((col, "rows"), list(off.items())))}
                    if off
                    else {}
                ),
            },
        )

    return rows_match


def all_present_check(export_type: ExportType, partitions_def) -> AssetChecksDefinition:
    col = export_type.key_column
    source_in = {"manifest": AssetIn(key=key(export_type, SOURCE_FILES))}

    @asset_check(
        asset=key(export_type, CANONICAL),
        name=f"every_source_{export_type.partition_column}_in_warehouse",
        additional_ins=source_in,
        partitions_def=partitions_def,
        blocking=True,
        description=(
            f"Every {col} of the day's source files is in the raw table, and every uuid of the day's "
            "raw rows is in canonical (within the dedup horizon)."
        ),
    )
    def all_present(
        context: AssetCheckExecutionContext, manifest: DayManifest, warehouse: Warehouse, loader: LoaderConfig
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        raw = warehouse.raw_day(export_type, day)
        expected = manifest.rows_by_key() or {}
        missing_raw = list(sorted_keys({k: n for k, n in expected.items() if n and k not in raw.key_rows}))
        missing_canonical = sorted_keys(
            warehouse.missing_from_canonical(export_type, day, loader.dedup_horizon_days)
        )
        passed = not missing_raw and not missing_canonical
        desc = f"{export_type.value} {day}: {len(expected)} {col}s in source"
        if missing_raw:
            desc += f"; missing from raw: {_names(missing_raw[:20])}"
        if missing_canonical:
            desc += f"; uuids missing from canonical for: {_names(list(missing_canonical)[:20])}"
        return AssetCheckResult(
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

    return all_present


def no_duplicates_check(export_type: ExportType, partitions_def) -> AssetChecksDefinition:

    @asset_check(
        asset=key(export_type, CANONICAL),
        name="no_duplicate_uuids",
        partitions_def=partitions_def,
        blocking=True,
        description="No uuid of the day's canonical rows occurs twice in canonical within the dedup horizon.",
    )
    def no_duplicates(
        context: AssetCheckExecutionContext, warehouse: Warehouse, loader: LoaderConfig
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        dups = warehouse.duplicate_uuids(export_type, day, loader.dedup_horizon_days)
        return AssetCheckResult(
            passed=not dups,
            description=f"{export_type.value} {day}: "
            + ("no duplicate uuids" if not dups else f"{len(dups)}+ duplicated uuids, e.g. {dups[0][0]}"),
            metadata={
                "duplicated_uuids": len(dups),
                "examples": MetadataValue.json([u for u, _ in dups[:5]]),
            },
        )

    return no_duplicates


def drift_check(export_type: ExportType, partitions_def) -> AssetChecksDefinition:

    @asset_check(
        asset=key(export_type, SOURCE_FILES),
        name="schema_drift",
        partitions_def=partitions_def,
        description=(
            "Columns the day's files add beyond the known E3 schema, and files quarantined as unreadable "
            "(missing/retyped columns fail the load unless quarantined)."
        ),
    )
    def drift(context: AssetCheckExecutionContext, manifest: DayManifest) -> AssetCheckResult:
        added = manifest.added_columns
        bad = [q.key for q in manifest.quarantined]
        parts = [f"new columns {', '.join(added)}"] if added else []
        parts += [f"{len(bad)} file(s) quarantined: {', '.join(bad[:5])}"] if bad else []
        return AssetCheckResult(
            passed=not parts,
            severity=AssetCheckSeverity.WARN,
            description=f"{export_type.value} {manifest.day}: " + ("; ".join(parts) or "schema as expected"),
            metadata={
                "added_columns": MetadataValue.json(added),
                "quarantined": MetadataValue.json(
                    [{"key": q.key, "reason": q.reason} for q in manifest.quarantined]
                ),
            },
        )

    return drift


def fresh_check(export_type: ExportType, partitions_def) -> AssetChecksDefinition:
    source_in = {"manifest": AssetIn(key=key(export_type, SOURCE_FILES))}

    @asset_check(
        asset=key(export_type, RAW_TABLE),
        name="fresh_after_success",
        additional_ins=source_in,
        partitions_def=partitions_def,
        # A day changed since it was listed fails the run (ERROR); a late load only warns (WARN).
        blocking=True,
        description=(
            "The loaded day is what the source holds now: its _SUCCESS marker and its file list (keys, "
            "sizes, ETags) are unchanged since the files were listed (a rewritten day fails until "
            "re-run), and the load followed the marker within `freshness_sla_hours` (late: warns)."
        ),
    )
    def fresh(
        context: AssetCheckExecutionContext, manifest: DayManifest, source: ExportSource, loader: LoaderConfig
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        marker = source.head(success_key(source.root, export_type, day))
        now = dt.datetime.now(dt.timezone.utc)
        listed = manifest.success_etag
        if listed is None:
            changed = marker is not None
        else:
            changed = marker is None or marker.etag != listed
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
            passed=not changed and not late,
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

    return fresh


# One builder per check; `drift` checks the manifest asset itself, so it needs no additional_ins.
CHECK_BUILDERS = (rows_match_check, all_present_check, no_duplicates_check, drift_check, fresh_check)


def build_export_checks(export_type: ExportType, partitions_def) -> list[AssetChecksDefinition]:
    return [build(export_type, partitions_def) for build in CHECK_BUILDERS]
