"""``analysis/experiments``: names, traffic weights and each experiment's baseline variation."""

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from optimizely_assets.analysis.baselines import choose_baselines
from optimizely_assets.assets.keys import NAMES_KEY, UNITS_KEY
from optimizely_assets.resources.experiment_catalog import ExperimentCatalog
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis import ExperimentAnalysis


class ExperimentsConfig(Config):
    baselines: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "experiment id -> the variation id the others are compared with. Over "
            "OPTIMIZELY_BASELINES (which automated runs use); by default the first variation "
            "Optimizely's REST API lists, else the smallest variation id."
        ),
    )


def build_experiments_asset(common: dict, metadata: dict, baselines: dict[str, str] | None = None):
    defaults = dict(baselines or {})

    @asset(
        key=NAMES_KEY,
        deps=[AssetDep(UNITS_KEY, partition_mapping=AllPartitionMapping())],
        metadata=metadata,
        description=(
            "Experiment and variation names, traffic weights and the baseline variation, from "
            "Optimizely's REST API (GET /v2/experiments/{id}) with the same token; offline, the "
            "synthetic names or the ids. The baseline is configurable per experiment."
        ),
        **common,
    )
    def experiments(
        context: AssetExecutionContext,
        config: ExperimentsConfig,
        warehouse: Warehouse,
        catalog: ExperimentCatalog,
    ) -> MaterializeResult:
        analysis = ExperimentAnalysis(warehouse.for_context(context))
        analysis.ensure_tables()
        seen: dict[str, list[str]] = {}
        for experiment_id, variation_id in analysis.query(
            f"SELECT DISTINCT experiment_id, variation_id FROM {analysis.names['experiment_units']} "
            "WHERE variation_id IS NOT NULL"
        ):
            seen.setdefault(str(experiment_id), []).append(str(variation_id))
        rows, errors = catalog.lookup(seen)
        for error in errors[:5]:  # names decorate results; their absence must not stop the day
            context.log.warning(f"experiment names: {error}; ids are used instead")
        where = "the experiments asset's baselines config" if config.baselines else "OPTIMIZELY_BASELINES"
        rows = choose_baselines(rows, {**defaults, **config.baselines}, where)
        analysis.replace_experiments(rows)
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "experiments": len(seen),
                "sources": ", ".join(sorted({r.source for r in rows})),
                "api_errors": len(errors),
                "baselines": ", ".join(f"{r.experiment_id}: {r.variation_id}" for r in rows if r.is_baseline),
            }
        )

    return experiments
