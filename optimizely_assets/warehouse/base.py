"""What every warehouse backend does, and the semantics they share, defined once.

Tables per export type ``t`` (decisions | events):

- ``{t}_raw``: the day's rows exactly as exported, one partition per export date, replaced whole
  by each load. Only the files' own columns: nothing is taken from the path.
- ``{t}``: canonical, unique by ``uuid`` within the dedup horizon; the source columns plus
  ``export_date`` (the export day that first delivered the uuid, its partition) and
  ``event_date`` (``DATE(COALESCE(timestamp, process_timestamp))`` in UTC, for convenience).

Dedup horizon: a day's MERGE looks for its uuids in canonical export dates
``[day - H, day + H]`` (``dedup_window``). The window depends on the export day only, never on
client timestamps, so a re-send with another or a NULL timestamp is still found, a 1970 device
clock cannot widen it, and a day's cost is bounded by ``2H + 1`` partitions, not by history.
It is symmetric so that loading days out of order (backfills, re-runs) finds later copies too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import pyarrow as pa
from dagster import ConfigurableResource

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse.errors import (  # noqa: F401 - re-exported: their home before
    EmptyDayError,
    MergeConcurrencyError,
    TableLayoutError,
    layout_error,
    name_failed_files,
)
from optimizely_assets.warehouse.history import LoadHistoryRow

# Canonical columns that are not source columns.
EXPORT_DATE = "export_date"
EVENT_DATE = "event_date"

CLUSTERING = {
    ExportType.DECISIONS: ["experiment_id", "visitor_id"],
    ExportType.EVENTS: ["event_name", "visitor_id"],
}


@dataclass(frozen=True)
class TableNames:
    raw: str
    canonical: str


def table_names(export_type: ExportType) -> TableNames:
    return TableNames(raw=f"{export_type.value}_raw", canonical=export_type.value)


def dedup_window(day: dt.date, horizon_days: int) -> tuple[dt.date, dt.date]:
    """Canonical export dates a day's uuids are looked up in (module docstring)."""
    span = dt.timedelta(days=int(horizon_days))
    return day - span, day + span


# --- which copy of a uuid wins --------------------------------------------------------------
# The first copy received wins: ordered by process_timestamp, then timestamp, then every other
# column of the known schema, so copies that tie on the timestamps still give the same winner on
# both backends. NULLs sort last. Nested columns compare as a text both backends build alike.


@dataclass(frozen=True)
class OrderColumn:
    name: str
    nested_fields: tuple[str, ...] = ()  # list<struct> or map (as key, value): its fields, in order

    @property
    def is_nested(self) -> bool:
        return bool(self.nested_fields)


def winner_order(export_type: ExportType) -> list[OrderColumn]:
    schema = SCHEMAS[export_type]
    first = ["process_timestamp", "timestamp"]
    rest = [f for f in schema if f.name not in first and f.name != "uuid"]
    out = [OrderColumn(n) for n in first]
    for f in rest:
        if pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type):
            out.append(OrderColumn(f.name, tuple(c.name for c in f.type.value_type)))
        elif pa.types.is_map(f.type):
            out.append(OrderColumn(f.name, ("key", "value")))
        else:
            out.append(OrderColumn(f.name))
    return out


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStats:
    """What BigQuery reports for the jobs of one operation (zeros on DuckDB)."""

    jobs: int = 0
    bytes_processed: int = 0
    bytes_billed: int = 0
    slot_ms: int = 0
    job_ids: tuple[str, ...] = ()

    def __add__(self, other: JobStats) -> JobStats:
        return JobStats(
            self.jobs + other.jobs,
            self.bytes_processed + other.bytes_processed,
            self.bytes_billed + other.bytes_billed,
            self.slot_ms + other.slot_ms,
            self.job_ids + other.job_ids,
        )

    def metadata(self) -> dict[str, int]:
        if not self.jobs:
            return {}
        return {
            "bigquery_jobs": self.jobs,
            "bytes_processed": self.bytes_processed,
            "bytes_billed": self.bytes_billed,
            "slot_ms": self.slot_ms,
        }


@dataclass(frozen=True)
class LoadResult:
    rows: int
    added_columns: tuple[str, ...] = ()
    jobs: JobStats = JobStats()
    key_rows: dict[str | None, int] | None = None  # per key value, where the load counted them


@dataclass(frozen=True)
class MergeStats:
    day_rows: int  # raw rows of the export day
    unique_uuids: int  # distinct non-null uuids among them
    null_uuid_rows: int  # rows without a uuid: they cannot be deduplicated and stay out of canonical
    inserted: int  # uuids new to canonical, written to the day
    window: tuple[dt.date, dt.date]  # canonical export dates searched for the day's uuids
    added_columns: tuple[str, ...] = ()  # columns added to canonical by this MERGE
    jobs: JobStats = JobStats()
    partition_rows: int | None = None  # canonical rows of the export day after the MERGE, if counted
    table_rows: int | None = None  # all canonical rows after the MERGE, if counted
    rewritten: int = 0  # rows the day already held, written again from raw (a re-run's changed content)
    removed: int = 0  # rows the day held whose uuid raw's day no longer has (a re-delivered day)

    @property
    def already_present(self) -> int:
        """The day's uuids it did not insert: held by another day of the window, or rewritten."""
        return self.unique_uuids - self.inserted


@dataclass(frozen=True)
class DaySummary:
    rows: int
    key_rows: dict[str | None, int] = field(default_factory=dict)  # experiment_id / event_name -> rows


@dataclass(frozen=True)
class CanonicalFindings:
    """What the canonical checks look at, for one export day within its dedup window."""

    missing: dict[str | None, int]  # per key value: raw uuids of the day that canonical lacks
    duplicates: list[tuple[str, int]]  # uuids of the day's canonical rows found more than once
    not_in_raw: int = 0  # canonical rows of the day whose uuid raw's day does not have
    not_in_raw_examples: tuple[str, ...] = ()  # the first 20 of them, by uuid
    unkeyed: int = 0  # window rows without a uuid_key, or day rows whose key is not their uuid's


def keyed_counts(rows) -> dict[str | None, int]:
    """(experiment_id / event_name, count) rows as a dict; a NULL key stays None."""
    return {(None if k is None else str(k)): int(n) for k, n in rows}


class Warehouse(ConfigurableResource):
    """One warehouse backend. Implementations: ``duckdb.DuckDBWarehouse``, ``bigquery.BigQueryWarehouse``."""

    kind: ClassVar[str]
    raw_day_column: ClassVar[str] = EXPORT_DATE  # what selects raw's export day in a query
    # True when the backend itself never runs two MERGEs into one table side by side.
    merges_serialised_by_backend: ClassVar[bool]

    def for_step(self, run_id: str, step_key: str, attempt: int = 0) -> Warehouse:
        """This warehouse for one Dagster step; a backend may tag its jobs with it (BigQuery)."""
        return self

    def for_context(self, context) -> Warehouse:
        """``for_step`` from an asset's execution context."""
        step = context.op_execution_context.get_step_execution_context().step.key
        return self.for_step(context.run_id, step, context.retry_number)

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        """This warehouse for consecutive calls of one step; a backend may share work between them
        (DuckDB: one connection). Here: itself."""
        yield self

    def ensure_tables(self, export_type: ExportType) -> None:
        raise NotImplementedError

    def load_raw_day(
        self, export_type: ExportType, day: dt.date, files: list[StagedFile], added: list[pa.Field]
    ) -> LoadResult:
        """Replace the day's raw partition with exactly these files: fully or not at all.

        Creates the tables first where missing (as ``merge_canonical`` does)."""
        raise NotImplementedError

    def merge_canonical(
        self, export_type: ExportType, day: dt.date, horizon_days: int, history: LoadHistoryRow | None = None
    ) -> MergeStats:
        """Make canonical's day a function of raw's: the first copy of each of raw's uuids that no other
        day of the window holds. A re-run deletes what raw no longer has and rewrites the rest, in the
        same statement or transaction. With ``history``, also its ``load_history`` row (history.py)."""
        raise NotImplementedError

    def record_history(self, row: LoadHistoryRow) -> None:
        """Append one ``load_history`` row on its own (a failed day's)."""
        raise NotImplementedError

    def raw_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        raise NotImplementedError

    def canonical_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        raise NotImplementedError

    def canonical_findings(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> tuple[DaySummary, CanonicalFindings]:
        """The day's raw summary, the uuids canonical lacks and the duplicated ones, for the checks:
        one probe of the dedup window, on ``uuid_key`` (uuid_key.py)."""
        raise NotImplementedError

    def duplicate_uuids(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> list[tuple[str, int]]:
        """uuids of the day's canonical rows found more than once in the day's dedup window."""
        return self.canonical_findings(export_type, day, horizon_days)[1].duplicates

    def missing_from_canonical(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> dict[str | None, int]:
        """Per key value: raw uuids of the day that canonical lacks within the dedup window."""
        return self.canonical_findings(export_type, day, horizon_days)[1].missing

    def not_in_raw(self, export_type: ExportType, day: dt.date) -> tuple[int, tuple[str, ...]]:
        """Canonical rows of the day whose uuid raw's day lacks: their count and the first 20 uuids."""
        raise NotImplementedError

    def ref(self, name: str) -> str:
        """A table of this warehouse as SQL names it (BigQuery qualifies it with project and dataset)."""
        return name

    def table_uri(self, export_type: ExportType, which: str) -> str:
        """``which`` is ``raw`` or ``canonical``; a name a user can paste into a query."""
        raise NotImplementedError

    def table_rows(self, export_type: ExportType, which: str) -> int:
        """All rows of the table, from metadata where the warehouse keeps it (free on BigQuery)."""
        raise NotImplementedError

    # --- preflight ------------------------------------------------------------------------

    def dry_run(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> list[tuple[str, int | None]]:
        """(query, bytes it would process) for every query a day runs; bytes None where unknown."""
        raise NotImplementedError

    def smoke_load(
        self, export_type: ExportType, day: dt.date, file: StagedFile
    ) -> tuple[int, dict[str, str]]:
        """Load one staged file exactly as a day is loaded, into a scratch table that is then dropped.

        Returns the rows loaded and the warehouse type of the timestamp columns.
        """
        raise NotImplementedError
