"""Per-day data-quality checks: the proof that a loaded day is complete."""

import datetime as dt

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from optimizely_assets.assets.keys import CANONICAL, RAW_TABLE, SOURCE_FILES, key, md_table, partition_day
from optimizely_assets.layout import ExportType, success_key
from optimizely_assets.manifest import DayManifest
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.warehouse import Warehouse


def build_export_checks(export_type: ExportType, partitions_def) -> list[AssetsDefinition]:
    col = export_type.partition_column
    source_in = {"manifest": AssetIn(key=key(export_type, SOURCE_FILES))}

    @asset_check(
        asset=key(export_type, RAW_TABLE),
        name="rows_match_source_footers",
        additional_ins=source_in,
        partitions_def=partitions_def,
        blocking=True,
        description="Raw rows of the day == sum of the Parquet footer row counts of its source files.",
    )
    def rows_match(
        context: AssetCheckExecutionContext, manifest: DayManifest, warehouse: Warehouse
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        raw = warehouse.raw_day(export_type, day)
        expected = manifest.rows_by_partition()
        off = {
            k: f"source {expected.get(k, 0):,} / raw {raw.partition_rows.get(k, 0):,}"
            for k in sorted(set(expected) | set(raw.partition_rows))
            if expected.get(k, 0) != raw.partition_rows.get(k, 0)
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

    @asset_check(
        asset=key(export_type, CANONICAL),
        name=f"every_source_{col}_in_warehouse",
        additional_ins=source_in,
        partitions_def=partitions_def,
        blocking=True,
        description=(
            f"Every {col} of the day's source paths is in the raw table, and every uuid of the day's "
            "raw rows is in canonical."
        ),
    )
    def all_present(
        context: AssetCheckExecutionContext, manifest: DayManifest, warehouse: Warehouse, loader: LoaderConfig
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        raw = warehouse.raw_day(export_type, day)
        expected = manifest.rows_by_partition()
        missing_raw = sorted(k for k, n in expected.items() if n and k not in raw.partition_rows)
        missing_canonical = warehouse.missing_from_canonical(export_type, day, loader.dedup_lookback_days)
        passed = not missing_raw and not missing_canonical
        desc = f"{export_type.value} {day}: {len(expected)} {col}s in source"
        if missing_raw:
            desc += f"; missing from raw: {', '.join(missing_raw[:20])}"
        if missing_canonical:
            desc += f"; uuids missing from canonical for: {', '.join(sorted(missing_canonical)[:20])}"
        return AssetCheckResult(
            passed=passed,
            description=desc,
            metadata={
                f"source_{col}s": len(expected),
                "missing_from_raw": MetadataValue.json(missing_raw),
                "uuids_missing_from_canonical": sum(missing_canonical.values()),
                **(
                    {"missing_by_" + col: MetadataValue.md(md_table((col, "uuids"), missing_canonical))}
                    if missing_canonical
                    else {}
                ),
            },
        )

    @asset_check(
        asset=key(export_type, CANONICAL),
        name="no_duplicate_uuids",
        partitions_def=partitions_def,
        blocking=True,
        description="No uuid of the day's canonical rows occurs twice in canonical.",
    )
    def no_duplicates(
        context: AssetCheckExecutionContext, warehouse: Warehouse, loader: LoaderConfig
    ) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        dups = warehouse.duplicate_uuids(export_type, day, loader.dedup_lookback_days)
        return AssetCheckResult(
            passed=not dups,
            description=f"{export_type.value} {day}: "
            + ("no duplicate uuids" if not dups else f"{len(dups)}+ duplicated uuids, e.g. {dups[0][0]}"),
            metadata={
                "duplicated_uuids": len(dups),
                "examples": MetadataValue.json([u for u, _ in dups[:5]]),
            },
        )

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

    @asset_check(
        asset=key(export_type, RAW_TABLE),
        name="fresh_after_success",
        additional_ins=source_in,
        partitions_def=partitions_def,
        description=(
            "The loaded day is what the source holds now: its _SUCCESS marker is unchanged since the "
            "files were listed (a rewritten day fails until re-run), and the load followed the marker "
            "within `freshness_sla_hours` (a late load of a recent day warns)."
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
        lag_h = (
            (now - manifest.success_last_modified).total_seconds() / 3600
            if manifest.success_last_modified
            else None
        )
        # Only recent days can be late: a backfill of last year is not a freshness problem.
        recent = (now.date() - day).days <= loader.freshness_sla_hours / 24 + 1
        late = recent and lag_h is not None and lag_h > loader.freshness_sla_hours
        if changed:
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
            },
        )

    # The manifest input of `drift` is the checked asset itself, so it needs no additional_ins.
    return [rows_match, all_present, no_duplicates, drift, fresh]
