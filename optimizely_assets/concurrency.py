"""The in-process executor, guarded: a run whose steps could overlap MERGEs into one table refuses to start.

BigQuery lets insert-only MERGEs into one table run side by side, and both then insert a uuid
that each saw missing. Each canonical table has its own Dagster pool; only an instance that
enforces a limit of 1 on it, per step, keeps two runs' MERGEs apart. The guard reads the
instance this run belongs to before any step runs, and fails the run with what to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from dagster import executor
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, _core_in_process_executor_creation
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.instance import DagsterInstance

from optimizely_assets.warehouse import MergeConcurrencyError


def pool_problems(instance: DagsterInstance, pools: Iterable[str]) -> list[str]:
    """Why this instance would let two steps of one of ``pools`` run at once (empty: it would not)."""
    pools = sorted(set(pools))
    if not pools:
        return []
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return [
            f"this Dagster instance ({type(storage).__name__}) cannot enforce pool limits, so another run "
            f"could MERGE into the same table at the same time; use a persistent instance "
            f"(set DAGSTER_HOME, e.g. `make dev`) with this project's dagster.yaml"
        ]
    granularity = instance.get_concurrency_config().pool_config.pool_granularity
    if granularity is not None and granularity.value != "op":
        return [
            f"dagster.yaml sets concurrency.pools.granularity to {granularity.value!r}; the canonical "
            "pools need 'op' so that each MERGE step holds its table's slot"
        ]
    problems = []
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        if info.limit != 1:
            problems.append(
                f"pool {pool!r} allows {info.limit if info.limit is not None else 'unlimited'} concurrent "
                f"steps; set it to 1 (`dagster instance concurrency set {pool} 1`, or "
                "concurrency.pools.default_limit: 1 in dagster.yaml)"
            )
    return problems


def refusal(problems: list[str]) -> MergeConcurrencyError:
    return MergeConcurrencyError(
        "refusing to start: BigQuery runs insert-only MERGEs into one table side by side, and two of "
        "them would both insert a uuid each saw missing. " + " ".join(problems)
    )


def ensure_merges_serialised(instance: DagsterInstance, pool: str) -> None:
    """The same guard inside the MERGE step: `execute_in_process` and other executors skip ours."""
    problems = pool_problems(instance, [pool])
    if problems:
        raise refusal(problems)


class PoolGuardExecutor(Executor):
    """Delegates to the in-process executor once the instance is shown to serialise ``pools``."""

    def __init__(self, inner: InProcessExecutor, pools: frozenset[str]) -> None:
        self._inner = inner
        self._pools = pools

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator:
        steps = execution_plan.get_steps_to_execute_in_topo_order()
        needed = {s.pool for s in steps if s.pool in self._pools}
        problems = pool_problems(plan_context.instance, needed)
        if problems:
            raise refusal(problems)
        yield from self._inner.execute(plan_context, execution_plan)


def guarded_in_process_executor(serialised_pools: Iterable[str]):
    """The in-process executor for every job, refusing runs that could overlap ``serialised_pools``."""
    pools = frozenset(serialised_pools)

    @executor(name="in_process", config_schema=IN_PROC_CONFIG)
    def _guarded(init_context):
        inner = _core_in_process_executor_creation(init_context.executor_config)
        return PoolGuardExecutor(inner, pools)

    return _guarded
