"""Checks of the experiment analysis: units agree with the decisions, and the sample ratio (SRM)."""

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
from optimizely_assets.assets.analysis import RESULTS_KEY, UNITS_KEY
from optimizely_assets.assets.factory import partition_day
from optimizely_assets.assets.metadata import md_table
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis


def build_analysis_checks(partitions_def) -> list[AssetChecksDefinition]:
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
                "units summed over variations (each visitor exactly one unit).",
            ),
        ],
    )
    def units_checks(context: AssetCheckExecutionContext, warehouse: Warehouse) -> Iterator[AssetCheckResult]:
        day = partition_day(context.partition_key)
        analysis = ExperimentAnalysis(warehouse)
        stray = analysis.units_not_in_decisions(day)
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
        counts = analysis.visitors_vs_units(day)
        off = {e: f"{v:,} visitors / {u:,} units" for e, (v, u) in sorted(counts.items()) if v != u}
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
                            md_table(("experiment", "visitors / units"), list(off.items()))
                        )
                    }
                    if off
                    else {}
                ),
            },
        )

    @asset_check(
        asset=RESULTS_KEY,
        name="sample_ratio_mismatch",
        partitions_def=partitions_def,
        description=(
            f"Chi-square test of units per variation against the experiment's traffic allocation (REST "
            f"API weights, else an equal split); warns at p < {SRM_P_THRESHOLD} and names the experiment."
        ),
    )
    def srm(warehouse: Warehouse) -> AssetCheckResult:
        rows = ExperimentAnalysis(warehouse).results()
        names = {r.experiment_id: r.experiment_name for r in rows}
        tests = srm_tests(rows)
        bad = [t for t in tests if t.mismatch]
        table = [
            (
                f"{names[t.experiment_id]} ({t.experiment_id})",
                f"{' / '.join(f'{n:,}' for n in t.units.values())} | {t.allocation} | {t.p_value:.2g}",
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
                    + ", ".join(
                        f"{names[t.experiment_id]} ({t.experiment_id}, p={t.p_value:.2g})" for t in bad
                    )
                )
            ),
            metadata={
                "experiments_tested": len(tests),
                "mismatched": MetadataValue.json([t.experiment_id for t in bad]),
                "tests": MetadataValue.md(
                    md_table(("experiment", "units per variation | allocation | p"), table)
                ),
            },
        )

    return [units_checks, srm]
