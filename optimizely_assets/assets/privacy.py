"""``privacy/deletion_log``: the pending deletion requests, processed (privacy/forget.py).

A graph of ops so each DELETE runs in the pool of its table's MERGE: decisions' raw and canonical
in the decisions canonical pool, events' in the events pool, the units and attributed events in
the units pool. Ops pass request ids and counts only: the ids to forget stay in the warehouse's
``deletion_requests`` (which the request deletes at the end), never in Dagster's run storage.
`optimizely-assets forget` queues its ids there and runs this same asset.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    OpExecutionContext,
    asset_check,
    graph_asset,
    op,
)

from optimizely_assets.assets.analysis import UNITS_POOL
from optimizely_assets.assets.keys import canonical_pool
from optimizely_assets.concurrency import ensure_merges_serialised
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.privacy import forget
from optimizely_assets.privacy.tables import PrivacySettings, PrivacyTables
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse import forget_sql as sql

DELETION_LOG_KEY = AssetKey(["privacy", "deletion_log"])
GROUP = "privacy"


def _tables(context: OpExecutionContext, warehouse: Warehouse) -> PrivacyTables:
    return PrivacyTables(warehouse.for_context(context))


@op(description="Claim the pending requests; their hashes join forgotten_visitors (later loads skip them).")
def forget_claim(context: OpExecutionContext, warehouse: Warehouse, privacy: PrivacySettings) -> list[str]:
    tables = _tables(context, warehouse)
    tables.ensure()
    salt = privacy.salt()
    tables.claim()
    requests = [str(r) for (r,) in tables.query(sql.open_requests(tables.names))]
    for request_id in requests:
        forget.suppress(tables, request_id, tables.ids_of(request_id), salt)
    context.log.info(f"{len(requests)} request(s) to process")
    return requests


def _type_op(export_type: ExportType):
    @op(
        name=f"forget_{export_type.value}",
        pool=canonical_pool(export_type),
        description=f"Scrub the staged {export_type.value} files of the days holding them; delete their raw "
        "and canonical rows (in the pool of the canonical MERGE).",
    )
    def _forget(
        context: OpExecutionContext,
        requests: list[str],
        warehouse: Warehouse,
        staging: Staging,
        source: ExportSource,
    ) -> dict:
        pool = canonical_pool(export_type)
        ensure_merges_serialised(
            context.instance, context.run_id, pool, warehouse.merges_serialised_by_backend
        )
        tables = _tables(context, warehouse)
        return {
            r: forget.forget_type(tables, staging, source.root, export_type, tables.ids_of(r), False).__dict__
            for r in requests
        }

    return _forget


@op(pool=UNITS_POOL, description="Delete their units and attributed events (in the units pool).")
def forget_analysis(context: OpExecutionContext, requests: list[str], warehouse: Warehouse) -> dict:
    ensure_merges_serialised(
        context.instance, context.run_id, UNITS_POOL, warehouse.merges_serialised_by_backend
    )
    tables = _tables(context, warehouse)
    return {r: forget.forget_analysis(tables, tables.ids_of(r), False).__dict__ for r in requests}


def build_deletion_log_asset(exclude_multiple: bool):
    forget_decisions, forget_events = (_type_op(t) for t in ExportType)

    @op(
        description="Rebuild results and metrics, rewrite the embedded file, log each visitor, drop the clear ids."
    )
    def forget_finish(
        context: OpExecutionContext,
        requests: list[str],
        decisions: dict,
        events: dict,
        analysis: dict,
        warehouse: Warehouse,
        privacy: PrivacySettings,
    ) -> dict:
        from optimizely_assets.assets.results import rebuild

        tables = _tables(context, warehouse)
        salt = privacy.salt()
        total = forget.Outcome()
        for request_id in requests:
            outcome = forget.Outcome()
            for part in (decisions, events, analysis):
                outcome.add(forget.Outcome(**part[request_id]))
            ids = tables.ids_of(request_id)
            forget.count_left(tables, ids, outcome)  # counted while the clear ids exist
            forget.finish(
                tables, request_id, ids, salt, outcome, lambda: rebuild(tables.analysis, exclude_multiple)
            )
            total.add(outcome)
        rewritten = forget.rewrite_embedded(tables) if requests and not total.errors else None
        context.add_output_metadata(
            {
                "requests": len(requests),
                "rows_removed": MetadataValue.json(total.rows),
                "files_rewritten": total.files,
                "rows_left": total.rows_left,
                "errors": len(total.errors),
                **({"warehouse_file_bytes": f"{rewritten[0]:,} -> {rewritten[1]:,}"} if rewritten else {}),
            }
        )
        if total.errors:
            raise forget.ForgetError(
                f"{len(total.errors)} part(s) could not be forgotten; the request stays open, re-run it: "
                + "; ".join(total.errors[:5])
            )
        return {"requests": requests, "rows": total.rows, "files": total.files}

    @graph_asset(
        key=DELETION_LOG_KEY,
        group_name=GROUP,
        description=(
            "Processes the pending rows of `deletion_requests` (visitor ids, fed by `optimizely-assets forget` "
            "or a team's own system): every row of those visitors leaves raw, canonical, experiment_units and "
            "experiment_events, their staged files are rewritten without them, results are rebuilt, their "
            "salted hashes join `forgotten_visitors` (later loads skip them) and `deletion_log` gets a row "
            "per visitor. The request's clear ids are deleted when it succeeds; a failed one is resumed by "
            "the next run."
        ),
    )
    def deletion_log():
        requests = forget_claim()
        return forget_finish(
            requests, forget_decisions(requests), forget_events(requests), forget_analysis(requests)
        )

    @asset_check(
        asset=DELETION_LOG_KEY,
        blocking=True,
        description="No request is left unfinished, and "
        "each visitor of the last requests was counted absent from every table before its id was dropped.",
    )
    def requests_completed(warehouse: Warehouse) -> AssetCheckResult:
        tables = PrivacyTables(warehouse)
        tables.ensure()
        open_requests = tables.query(sql.open_requests(tables.names))
        failed = tables.query(
            f"SELECT COUNT(*) FROM {tables.names[sql.LOG]} WHERE outcome <> 'ok' AND request_id NOT IN "
            f"(SELECT request_id FROM {tables.names[sql.LOG]} WHERE outcome = 'ok')"
        )[0][0]
        left = tables.query(
            f"SELECT COALESCE(SUM(rows_left), 0) FROM {tables.names[sql.LOG]} WHERE outcome = 'ok'"
        )[0][0]
        passed = not open_requests and not failed and not left
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=(
                "every deletion request finished, nothing of its visitors left"
                if passed
                else f"{len(open_requests)} request(s) unfinished, {failed} log row(s) failed, {left} row(s) left"
            ),
            metadata={
                "open_requests": len(open_requests),
                "failed_log_rows": int(failed),
                "rows_left": int(left),
            },
        )

    return deletion_log, requests_completed
