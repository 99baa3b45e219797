"""Checks of the experiment analysis: units agree with the decisions, rows beyond the lateness bound
are named, and the sample ratio (SRM)."""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from optimizely_assets.analysis.srm import SRM_P_THRESHOLD, srm_tests
from optimizely_assets.assets.factory import partition_day
from optimizely_assets.assets.keys import EVENTS_KEY, RESULTS_KEY, UNITS_KEY
from optimizely_assets.assets.metadata import md_table
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis
from optimizely_assets.warehouse.analysis_sql import Window


def _beyond_bound(day, what: str, counts: dict[str, int], window: Window) -> AssetCheckResult:
    total = sum(counts.values())
    return AssetCheckResult(
        passed=not counts,
        severity=AssetCheckSeverity.WARN,
        description=f"{day}: "
        + (
            f"no {what} beyond the lateness bound ({window.lateness_days} days)"
            if not counts
            else f"{total:,} {what} beyond the lateness bound ({window.lateness_days} days) are counted, "
            "not attributed, in experiment(s) "
            + ", ".join(f"{e} ({n:,})" for e, n in sorted(counts.items())[:10])
        ),
        metadata={
            f"{what.replace(' ', '_')}_beyond_bound": total,
            "per_experiment": MetadataValue.json(dict(sorted(counts.items()))),
        },
    )


def build_analysis_checks(partitions_def, window: Window) -> list[AssetChecksDefinition]:
    @multi_asset_check(
        name="experiment_units_checks",
        specs=[
            AssetCheckSpec(
                "unit_variation_in_decisions",
                asset=UNITS_KEY,
                blocking=True,
                partitions_def=partitions_def,
                description="Every unit written by the day is one of the day's decisions: same uuid, "
                "experiment and variation.",
            ),
            AssetCheckSpec(
                "units_match_distinct_visitors",
                asset=UNITS_KEY,
                blocking=True,
                partitions_def=partitions_def,
                description="Per experiment of the day, the distinct visitors of its decisions == their "
                "units summed over variations (each visitor exactly one unit), and no unit is later "
                "than one of the day's decisions (a unit is the pair's first decision).",
            ),
        ],
    )
    def units_checks(context: AssetCheckExecutionContext, warehouse: Warehouse) -> Iterator[AssetCheckResult]:
        day = partition_day(context.partition_key)
        analysis = ExperimentAnalysis(warehouse)
        stray = analysis.units_not_in_decisions(day, window)
        yield AssetCheckResult(
            asset_key=UNITS_KEY,
            check_name="unit_variation_in_decisions",
            passed=not stray,
            description=f"{day}: "
            + (
                "every unit matches a decision of the day"
                if not stray
                else f"{sum(stray.values())} unit(s) match no decision of the day, in experiment(s) "
                + ", ".join(sorted(stray)[:10])
            ),
            metadata={"units_without_decision": sum(stray.values())},
        )
        counts = analysis.visitors_vs_units(day, window)
        off = {
            e: f"{v:,} visitors / {u:,} units / {lt:,} later than a decision"
            for e, (v, u, lt) in sorted(counts.items())
            if v != u or lt
        }
        yield AssetCheckResult(
            asset_key=UNITS_KEY,
            check_name="units_match_distinct_visitors",
            passed=not off,
            description=f"{day}: {len(counts)} experiment(s)"
            + ("; visitors and units agree" if not off else f"; differ in {', '.join(list(off)[:10])}"),
            metadata={
                "experiments": len(counts),
                **(
                    {
                        "differing": MetadataValue.md(
                            md_table(("experiment", "visitors / units / later"), list(off.items()))
                        )
                    }
                    if off
                    else {}
                ),
            },
        )

    @asset_check(
        asset=UNITS_KEY,
        name="decisions_within_lateness_bound",
        partitions_def=partitions_def,
        description=f"Warns, per experiment, of the day's decisions whose timestamp is more than "
        f"{window.lateness_days} days before the export day (or over a day after it): they make no unit.",
    )
    def late_decisions(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        return _beyond_bound(
            day, "decisions", ExperimentAnalysis(warehouse).late_decisions(day, window), window
        )

    @asset_check(
        asset=EVENTS_KEY,
        name="events_within_lateness_bound",
        partitions_def=partitions_def,
        description=f"Warns, per experiment, of the day's events beyond the lateness bound "
        f"({window.lateness_days} days) that a unit's attribution window would have taken.",
    )
    def late_events(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        day = partition_day(context.partition_key)
        _, counts = ExperimentAnalysis(warehouse).late_events(day, window)
        return _beyond_bound(day, "events", counts, window)

    @asset_check(
        asset=RESULTS_KEY,
        name="sample_ratio_mismatch",
        partitions_def=partitions_def,
        description=(
            f"Chi-square test of units per variation against the experiment's traffic allocation (REST "
            f"API weights, else an equal split); warns at p < {SRM_P_THRESHOLD}, or when any unit is in a "
            "variation of weight 0, unknown or NULL, and names the experiment."
        ),
    )
    def srm(warehouse: Warehouse) -> AssetCheckResult:
        analysis = ExperimentAnalysis(warehouse)
        rows = analysis.results()
        names = {r.experiment_id: r.experiment_name for r in rows}
        tests = srm_tests(rows, analysis.allocations())
        bad = [t for t in tests if t.mismatch]
        table = [
            (
                f"{names[t.experiment_id]} ({t.experiment_id})",
                f"{' / '.join(f'{n:,}' for n in t.units.values())} | {t.verdict()}",
            )
            for t in tests
        ]
        return AssetCheckResult(
            passed=not bad,
            severity=AssetCheckSeverity.WARN,
            description=(
                f"{len(tests)} experiment(s) tested; "
                + (
                    "no sample ratio mismatch"
                    if not bad
                    else "sample ratio mismatch in "
                    + ", ".join(f"{names[t.experiment_id]} ({t.experiment_id}: {t.verdict()})" for t in bad)
                )
            ),
            metadata={
                "experiments_tested": len(tests),
                "mismatched": MetadataValue.json([t.experiment_id for t in bad]),
                "tests": MetadataValue.md(md_table(("experiment", "units per variation | verdict"), table)),
            },
        )

    return [units_checks, late_decisions, late_events, srm]
