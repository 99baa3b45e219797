"""Forget visitors: the one code path of `optimizely-assets forget` and the `privacy/deletion_log` asset.

A request is the ids queued in ``deletion_requests``. Processing it, in order:
1. ``suppress``: their salted hashes join ``forgotten_visitors`` first, so a day staged from now
   on is scrubbed of them even while this request runs;
2. ``forget_type`` per export type: the staged files of every day whose raw partition holds them
   are scrubbed (rewritten without their rows, or deleted), then their raw and canonical rows are
   deleted (each DELETE in the pool of its table's MERGE when run by Dagster);
3. ``forget_analysis``: their units and attributed events;
4. ``finish``: the results and metrics are rebuilt, the embedded warehouse's file is rewritten so
   no byte of them survives, a ``deletion_log`` row per visitor is written, and the request's rows
   (the only clear ids) are deleted. A failure leaves the request claimed: a re-run resumes it,
   and every step is idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from optimizely_assets.e3.layout import ExportType, day_prefix
from optimizely_assets.privacy.scrub import matcher
from optimizely_assets.privacy.staged import scrub_staged
from optimizely_assets.privacy.tables import PrivacyTables
from optimizely_assets.privacy.visitors import visitor_hash
from optimizely_assets.resources.staging import Staging
from optimizely_assets.warehouse import forget_sql as sql

BATCH = 1_000  # ids per statement: BigQuery's query text stays far under its 1 MB limit


@dataclass
class Outcome:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows removed (or found, dry run)
    files: int = 0  # staged files rewritten or deleted (or holding them, dry run)
    bytes_billed: dict[str, int] = field(default_factory=dict)  # dry run on BigQuery: per DELETE
    errors: list[str] = field(default_factory=list)
    rows_left: int = 0  # in every table, counted after the deletes

    def add(self, other: Outcome) -> Outcome:
        for k, v in other.rows.items():
            self.rows[k] = self.rows.get(k, 0) + v
        self.files += other.files
        self.bytes_billed.update(other.bytes_billed)
        self.errors += other.errors
        self.rows_left += other.rows_left
        return self


class ForgetError(RuntimeError):
    pass


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]


def suppress(tables: PrivacyTables, request_id: str, ids: list[str], salt: str) -> int:
    now = dt.datetime.now(dt.timezone.utc)
    hashes = [visitor_hash(salt, v) for v in ids]
    for batch in _batches(hashes):
        tables.execute(
            [(sql.FORGOTTEN, sql.new_hashes(tables.names, batch, request_id, now, tables.bigquery))]
        )
    return len(hashes)


def _delete(tables: PrivacyTables, table: str, ids: list[str], dry_run: bool, out: Outcome) -> None:
    ref = tables.visitor_tables[table]
    try:
        for batch in _batches(ids):
            if dry_run:
                ((n,),) = tables.query(sql.count_rows(ref, batch, tables.bigquery))
                out.rows[table] = out.rows.get(table, 0) + int(n)
                if tables.bigquery:
                    out.bytes_billed[table] = out.bytes_billed.get(table, 0) + tables.dry_run_bytes(
                        sql.delete_rows(ref, batch, True)
                    )
            else:
                n = tables.execute([(table, sql.delete_rows(ref, batch, tables.bigquery))])
                out.rows[table] = out.rows.get(table, 0) + n
    except Exception as exc:  # noqa: BLE001 - named in the log; the request stays open for a re-run
        out.errors.append(f"{table}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def forget_type(
    tables: PrivacyTables,
    staging: Staging,
    source_root: str,
    export_type: ExportType,
    ids: list[str],
    dry_run: bool,
) -> Outcome:
    """Scrub the staged files of the days holding them, then delete their raw and canonical rows."""
    out = Outcome()
    raw, canonical = sql.visitor_tables(export_type)
    days: set[dt.date] = set()
    for batch in _batches(ids):
        days.update(
            d
            for (d,) in tables.query(
                sql.raw_days(tables.visitor_tables[raw], batch, tables.bigquery, tables.raw_day_column)
            )
        )
    match = matcher(ids=set(ids))
    for day in sorted(days):
        objects = list(staging.existing(day_prefix(source_root, export_type, day)).values())
        try:
            if dry_run:
                out.files += sum(1 for o in objects if _holds(staging, o, match))
            else:
                out.files += len(scrub_staged(staging, objects, match, export_type.key_column))
        except Exception as exc:  # noqa: BLE001
            out.errors.append(f"staged files of {export_type.value} {day}: {type(exc).__name__}: {exc}")
    if out.errors and not dry_run:
        # Raw is how a re-run finds these days again: it keeps their rows until the files are clean.
        return out
    for table in (raw, canonical):
        _delete(tables, table, ids, dry_run, out)
    return out


def _holds(staging: Staging, obj, match) -> bool:
    import tempfile
    from pathlib import Path

    from optimizely_assets.privacy.scrub import holds

    with tempfile.TemporaryDirectory(prefix="optimizely-scan-") as tmp:
        return holds(staging.fetch(obj.key, Path(tmp) / "staged.parquet"), match)


def forget_analysis(tables: PrivacyTables, ids: list[str], dry_run: bool) -> Outcome:
    out = Outcome()
    for table in sql.visitor_tables(None):
        _delete(tables, table, ids, dry_run, out)
    return out


def finish(
    tables: PrivacyTables,
    request_id: str,
    ids: list[str],
    salt: str,
    outcome: Outcome,
    rebuild,
) -> None:
    """Rebuild what depended on the rows, write the log, and drop the clear ids (if it all worked)."""
    if not outcome.errors:
        try:
            rebuild()
        except Exception as exc:  # noqa: BLE001
            outcome.errors.append(f"results rebuild: {type(exc).__name__}: {exc}")
    now = dt.datetime.now(dt.timezone.utc)
    requested = tables.query(
        f"SELECT MIN(requested_at) FROM {tables.names[sql.REQUESTS]} "
        f"WHERE request_id = {sql.string_literal(request_id, tables.bigquery)}"
    )[0][0]
    rows = [
        (
            request_id,
            requested,
            now,
            visitor_hash(salt, v),
            json.dumps(outcome.rows, sort_keys=True),
            outcome.files,
            outcome.rows_left,
            "failed" if outcome.errors or outcome.rows_left else "ok",
            "; ".join(outcome.errors)[:2000] or None,
        )
        for v in ids
    ]
    cols = [c for c, *_ in sql.COLUMNS[sql.LOG]]
    statements: list[str | tuple[str, str]] = [
        (sql.LOG, sql.insert_rows(tables.names[sql.LOG], cols, batch, tables.bigquery))
        for batch in [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    ]
    if not outcome.errors and not outcome.rows_left:
        statements.append(
            (
                sql.REQUESTS,
                f"DELETE FROM {tables.names[sql.REQUESTS]} "
                f"WHERE request_id = {sql.string_literal(request_id, tables.bigquery)}",
            )
        )
    tables.execute(statements)


def count_left(tables: PrivacyTables, ids: list[str], outcome: Outcome) -> None:
    """Rows of these visitors still in any visitor table (0 once forgotten), into ``outcome``; a
    table that cannot be read is an error of the request."""
    for table, ref in tables.visitor_tables.items():
        try:
            for batch in _batches(ids):
                outcome.rows_left += int(tables.query(sql.count_rows(ref, batch, tables.bigquery))[0][0])
        except Exception as exc:  # noqa: BLE001
            outcome.errors.append(
                f"{table} (recount): {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            )


def rewrite_embedded(tables: PrivacyTables) -> tuple[int, int] | None:
    """DuckDB: the file written anew, so deleted rows leave no bytes (warehouse/duckdb_forget.py).
    BigQuery keeps deleted rows for its time-travel window, then fail-safe (README, preflight)."""
    wh = tables.analysis.warehouse
    if wh.kind != "duckdb":
        return None
    from optimizely_assets.warehouse.duckdb_forget import rewrite_file

    return rewrite_file(wh.path, wh.row_group_size, wh.storage_version)  # type: ignore[attr-defined]
