"""The in-process executor, guarded: a run whose steps could overlap MERGEs into one table refuses to start.

BigQuery lets insert-only MERGEs into one table run side by side, and both then insert a uuid
that each saw missing. Each canonical table has its own Dagster pool; only an instance that
enforces a limit of 1 on it, per step, keeps two runs' MERGEs apart. The guard reads the
instance this run belongs to before any step runs, and fails the run with what to change.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable, Iterator

from dagster import executor
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, _core_in_process_executor_creation
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.instance import DagsterInstance
from dagster._core.storage.dagster_run import FINISHED_STATUSES, DagsterRunStatus

from optimizely_assets.instance import atomic_slot_claims, claims_race
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


WORKER_TAG = "optimizely/worker"  # host:pid of the process running the run's steps
REAP_EVERY_SECONDS = 10.0


def record_worker(instance: DagsterInstance, run_id: str) -> None:
    """Tag the run with this process, so a later run can tell when it died holding a slot."""
    instance.add_run_tags(run_id, {WORKER_TAG: f"{socket.gethostname()}:{os.getpid()}"})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_slots_of_dead_runs(instance: DagsterInstance) -> list[str]:
    """Free the pool slots of runs that ended, or whose worker on this host is gone (marked failed).

    Dagster frees a run's slots when the run ends; a worker killed by SIGKILL, the OOM killer or a
    lost node never ends its run. Launchers that can check their workers (Kubernetes, Docker) are
    covered by run monitoring in dagster.yaml; this covers the default launcher and in-process runs.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = {
        c.run_id
        for key in storage.get_concurrency_keys()
        for c in storage.get_concurrency_info(key).claimed_slots
    }
    freed = []
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            host, _, pid = run.tags.get(WORKER_TAG, "").rpartition(":")
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                continue
            if run.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING):
                instance.report_run_failed(
                    run, f"its worker process {pid} on {host} is gone; its pool slots were freed"
                )
        storage.free_concurrency_slots_for_run(run_id)
        freed.append(run_id)
    return freed


class _Reaper:
    """Frees dead runs' slots every few seconds while this run may be waiting for one."""

    def __init__(self, instance: DagsterInstance) -> None:
        self._instance = instance
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="optimizely-slot-reaper")

    def _loop(self) -> None:
        while not self._stop.wait(REAP_EVERY_SECONDS):
            try:
                free_slots_of_dead_runs(self._instance)
            except Exception:  # noqa: BLE001 - never fail a run over housekeeping
                pass

    def __enter__(self) -> _Reaper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def refusal(problems: list[str]) -> MergeConcurrencyError:
    return MergeConcurrencyError(
        "refusing to start: BigQuery runs insert-only MERGEs into one table side by side, and two of "
        "them would both insert a uuid each saw missing. " + " ".join(problems)
    )


def ensure_merges_serialised(
    instance: DagsterInstance, run_id: str, pool: str, serialised_by_backend: bool
) -> None:
    """Called first by every insert-only step (canonical MERGEs, unit inserts), under any executor.

    The step holding the pool slot tags its run with host:pid, so a later run can free the slot
    if this process dies (``free_slots_of_dead_runs``). Where the backend does not keep the
    inserts apart, the executor's guard runs again here: `execute_in_process` and other
    executors skip ours.
    """
    record_worker(instance, run_id)
    if serialised_by_backend:
        return
    problems = pool_problems(instance, [pool])
    if not problems and claims_race(instance):
        problems = [
            f"this run's {type(instance.event_log_storage).__name__} claimed its pool slot with Dagster's "
            "own read-then-write, which can give one slot to two steps; run it through the project's "
            "executor, or call optimizely_assets.instance.atomic_slot_claims(instance) before "
            "execute_in_process"
        ]
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
        instance = plan_context.instance
        steps = execution_plan.get_steps_to_execute_in_topo_order()
        needed = {s.pool for s in steps if s.pool in self._pools}
        problems = pool_problems(instance, needed)
        if problems:
            raise refusal(problems)
        if (
            not any(s.pool for s in steps)
            or not instance.event_log_storage.supports_global_concurrency_limits
        ):
            yield from self._inner.execute(plan_context, execution_plan)
            return
        atomic_slot_claims(instance)  # before any step claims a slot (instance.py)
        free_slots_of_dead_runs(instance)
        with _Reaper(instance):
            yield from self._inner.execute(plan_context, execution_plan)


def guarded_in_process_executor(serialised_pools: Iterable[str]):
    """The in-process executor for every job, refusing runs that could overlap ``serialised_pools``."""
    pools = frozenset(serialised_pools)

    @executor(name="in_process", config_schema=IN_PROC_CONFIG)
    def _guarded(init_context):
        inner = _core_in_process_executor_creation(init_context.executor_config)
        return PoolGuardExecutor(inner, pools)

    return _guarded
