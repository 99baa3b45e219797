"""``mixpanel/<type>``: each export day's canonical rows forwarded to Mixpanel (mixpanel/feed.py).

Present only when the Mixpanel settings are given. Partition D sends the rows canonical first took
in on export day D, so every row goes once per day it belongs to; a re-run sends the same
``$insert_id``s, which Mixpanel deduplicates. Checks, in the step: what Mixpanel rejected (warn, to
the dead-letter table) and that accepted + rejected == the day's canonical rows (error).
"""

from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    asset,
)

from optimizely_assets.assets.factory import ONE_DAY_PER_RUN, partition_day
from optimizely_assets.assets.keys import CANONICAL, NAMES_KEY, key
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.mixpanel.feed import feed_day, record_dead_letters, stream
from optimizely_assets.mixpanel.import_api import MixpanelImport
from optimizely_assets.mixpanel.mapping import load_mapping
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse import mixpanel_sql as sql
from optimizely_assets.warehouse.analysis import ExperimentAnalysis

GROUP = "mixpanel"


def mixpanel_key(export_type: ExportType) -> AssetKey:
    return AssetKey(["mixpanel", export_type.value])


def build_mixpanel_asset(
    export_type: ExportType, partitions_def, owners: list[str], mapping_file: str | None
):
    asset_key = mixpanel_key(export_type)
    deps = [key(export_type, CANONICAL)] + ([NAMES_KEY] if export_type is ExportType.DECISIONS else [])

    @asset(
        key=asset_key,
        deps=deps,
        partitions_def=partitions_def,
        backfill_policy=ONE_DAY_PER_RUN,
        group_name=GROUP,
        kinds={"mixpanel"},
        owners=owners,
        check_specs=[
            AssetCheckSpec(
                "rejected_records",
                asset=asset_key,
                description="Mixpanel accepted every row of "
                "the day (warn: the rejected ones are in mixpanel_dead_letter, with the reason).",
            ),
            AssetCheckSpec(
                "rows_accounted_for",
                asset=asset_key,
                blocking=True,
                description="accepted + rejected == the canonical rows of the day: nothing lost on the way.",
            ),
        ],
        description=(
            f"The {export_type.value} canonical rows of each export day sent to Mixpanel's Import API "
            + (
                "as `$experiment_started` (Experiment name, Variant name)"
                if export_type is ExportType.DECISIONS
                else "under their event_name"
            )
            + "; $insert_id from uuid, so a re-run is deduplicated by Mixpanel. Rejected rows go to "
            "`mixpanel_dead_letter`."
        ),
    )
    def _mixpanel(
        context: AssetExecutionContext, warehouse: Warehouse, mixpanel: MixpanelImport
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        day = partition_day(context.partition_key)
        mapping = load_mapping(Path(mapping_file) if mapping_file else None)[export_type]  # before sending
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        ref = analysis.warehouse.ref
        expected = int(analysis.query(sql.day_count(ref, export_type, day))[0][0])
        feed = feed_day(stream(analysis.warehouse, sql.day_rows(ref, export_type, day)), mapping, mixpanel)
        table = record_dead_letters(analysis, export_type, day, feed)
        r = feed.result
        yield MaterializeResult(
            metadata={
                "dagster/row_count": feed.rows,
                "sent": feed.sent,
                "accepted": r.accepted,
                "rejected": feed.rejected,
                "batches": feed.batches,
                "requests": r.requests,
                "retried_batches": r.retried_batches,
                "split_batches": r.split_batches,
                "dead_letter_table": table,
                "api_host": mixpanel.api_host,
            }
        )
        yield AssetCheckResult(
            check_name="rejected_records",
            passed=not feed.rejected,
            severity=AssetCheckSeverity.WARN,
            description=f"{export_type.value} {day}: "
            + (f"{feed.rejected:,} rows rejected, in {table}" if feed.rejected else "every row accepted"),
            metadata={"rejected": feed.rejected},
        )
        accounted = r.accepted + feed.rejected
        yield AssetCheckResult(
            check_name="rows_accounted_for",
            passed=accounted == expected == feed.rows,
            description=f"{export_type.value} {day}: {r.accepted:,} accepted + {feed.rejected:,} rejected "
            f"of {expected:,} canonical rows",
            metadata={"accepted": r.accepted, "rejected": feed.rejected, "canonical_rows": expected},
        )

    return _mixpanel
