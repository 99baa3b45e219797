"""Per-day data-quality checks: the proof that a loaded day is complete."""

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
from optimizely_assets.layout import ExportType
from optimizely_assets.manifest import DayManifest
from optimizely_assets.resources.loader_config import LoaderConfig
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
        missing_raw = sorted(
            k for k, n in manifest.rows_by_partition().items() if n and k not in raw.partition_rows
        )
        missing_canonical = warehouse.missing_from_canonical(export_type, day, loader.dedup_lookback_days)
        passed = not missing_raw and not missing_canonical
        desc = f"{export_type.value} {day}: {len(manifest.rows_by_partition())} {col}s in source"
        if missing_raw:
            desc += f"; missing from raw: {', '.join(missing_raw[:20])}"
        if missing_canonical:
            desc += f"; uuids missing from canonical for: {', '.join(sorted(missing_canonical)[:20])}"
        return AssetCheckResult(
            passed=passed,
            description=desc,
            metadata={
                f"source_{col}s": len(manifest.rows_by_partition()),
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
        description="Columns the day's files add beyond the known E3 schema (missing/retyped ones fail the load).",
    )
    def drift(context: AssetCheckExecutionContext, manifest: DayManifest) -> AssetCheckResult:
        added = manifest.added_columns
        return AssetCheckResult(
            passed=not added,
            severity=AssetCheckSeverity.WARN,
            description=f"{export_type.value} {manifest.day}: "
            + (f"new columns {', '.join(added)}" if added else "schema as expected"),
            metadata={"added_columns": MetadataValue.json(added)},
        )

    # The manifest input of `drift` is the checked asset itself, so it needs no additional_ins.
    return [rows_match, all_present, no_duplicates, drift]
