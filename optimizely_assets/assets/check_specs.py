"""Which checks each loading step evaluates, declared on the asset that step materializes."""

from __future__ import annotations

from dagster import AssetCheckSpec

from optimizely_assets.assets.keys import CANONICAL, MARKER_CHECK, RAW_TABLE, SOURCE_FILES, key
from optimizely_assets.e3.layout import ExportType


def check_specs(export_type: ExportType, stage: str, partitions_def) -> list[AssetCheckSpec]:
    """The checks evaluated in the step of ``stage``: each on the asset that step materializes."""
    col = export_type.key_column
    raw, canonical, source = (key(export_type, s) for s in (RAW_TABLE, CANONICAL, SOURCE_FILES))

    def spec(name: str, asset, description: str, blocking: bool = True) -> AssetCheckSpec:
        return AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=partitions_def
        )

    return {
        SOURCE_FILES: [
            spec(
                MARKER_CHECK,
                source,
                "The day's _SUCCESS marker exists in the source (the sensor fails this check for a day "
                "still without it once the day is older than the dedup horizon).",
                blocking=False,
            ),
            spec(
                "schema_drift",
                source,
                "Columns the day's files add beyond the known E3 schema, and files quarantined as unreadable "
                "(missing/retyped columns fail the load unless quarantined).",
                blocking=False,
            ),
        ],
        RAW_TABLE: [
            spec(
                "rows_match_source_footers",
                raw,
                f"Raw rows of the day == the Parquet footer row counts of its source files, in total and per "
                f"{col} (the files' own column, read from their footer statistics).",
            ),
            spec(
                "fresh_after_success",
                raw,
                "The loaded day is what the source holds now: its _SUCCESS marker and its file list (keys, "
                "sizes, ETags) are unchanged since the files were listed (a rewritten day fails until "
                "re-run), and the load followed the marker within `freshness_sla_hours` (late: warns).",
            ),
        ],
        CANONICAL: [
            spec(
                f"every_source_{export_type.partition_column}_in_warehouse",
                canonical,
                f"Every {col} of the day's source files is in the raw table, and every uuid of the day's "
                "raw rows is in canonical (within the dedup horizon).",
            ),
            spec(
                "no_duplicate_uuids",
                canonical,
                "No uuid of the day's canonical rows occurs twice in canonical within the dedup horizon.",
            ),
            spec(
                "canonical_day_within_raw_day",
                canonical,
                "Every uuid of the day's canonical rows is in the day's raw rows: a day Optimizely "
                "re-delivered with other rows leaves nothing behind (raw within canonical is the check above).",
            ),
        ],
    }.get(stage, [])
