"""BigQuery: load jobs from staged ``gs://`` URIs, single-statement MERGEs, aggregate checks.

Only documented behaviour is relied on; ``docs/bigquery.md`` lists each with its source, and
``optimizely-assets preflight`` exercises them on the user's own project.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import pyarrow as pa

from optimizely_assets.e3.layout import ExportType, compact_date
from optimizely_assets.e3.schemas import bigquery_source_fields
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse import bigquery_jobs as jobs
from optimizely_assets.warehouse import bigquery_scratch as scratch
from optimizely_assets.warehouse import bigquery_sql as sql
from optimizely_assets.warehouse import history as load_history
from optimizely_assets.warehouse.base import (
    CLUSTERING,
    EVENT_DATE,
    EXPORT_DATE,
    CanonicalFindings,
    DaySummary,
    JobStats,
    LoadResult,
    MergeStats,
    dedup_window,
    keyed_counts,
    layout_error,
    name_failed_files,
    table_names,
)
from optimizely_assets.warehouse.bigquery_client import BigQueryClient, job_stats
from optimizely_assets.warehouse.bigquery_scratch import URIS_PER_LOAD_JOB
from optimizely_assets.warehouse.bigquery_sql import PlannedQuery
from optimizely_assets.warehouse.history import LoadHistoryRow
from optimizely_assets.warehouse.uuid_key import UUID_KEY, uuid_text

KEYS_FILLED = "optimizely_assets_uuid_key"  # canonical's label once every row has its uuid_key


class BigQueryWarehouse(BigQueryClient):
    non_source_columns: ClassVar[tuple[str, ...]] = (EXPORT_DATE, EVENT_DATE)

    kind: ClassVar[str] = "bigquery"
    raw_day_column: ClassVar[str] = "_PARTITIONDATE"  # raw is ingestion-time partitioned
    # Insert-only MERGEs into one table run side by side (documented): Dagster must serialise them.
    merges_serialised_by_backend: ClassVar[bool] = False

    def table_uri(self, export_type: ExportType, which: str) -> str:
        return self.table_id(getattr(table_names(export_type), which))

    def table_rows(self, export_type: ExportType, which: str) -> int:
        return int(self.client.get_table(self.table_uri(export_type, which)).num_rows or 0)

    def raw_partition(self, export_type: ExportType, day: dt.date) -> str:
        """``project.dataset.t_raw$YYYYMMDD``: WRITE_TRUNCATE to it replaces exactly one day."""
        return f"{self.table_id(table_names(export_type).raw)}${compact_date(day)}"

    def raw_day_filter(self, day: dt.date) -> str:
        return sql.raw_day_filter(day, self.raw_day_column)

    def ensure_tables(self, export_type: ExportType):
        from google.cloud import bigquery

        self.ensure_dataset()
        names = table_names(export_type)
        source = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_source_fields(export_type)]
        raw = bigquery.Table(self.table_id(names.raw), schema=source)
        # Ingestion-time partitions, one per export day, written only through `raw$YYYYMMDD`.
        raw.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
        canonical = bigquery.Table(
            self.table_id(names.canonical),
            schema=[
                *source,
                bigquery.SchemaField(EXPORT_DATE, "DATE"),
                bigquery.SchemaField(EVENT_DATE, "DATE"),
                bigquery.SchemaField(UUID_KEY, "BYTES"),
            ],
        )
        canonical.labels = {KEYS_FILLED: "v1"}  # a table created with the key needs no migration
        canonical.time_partitioning = bigquery.TimePartitioning(field=EXPORT_DATE)
        canonical.clustering_fields = CLUSTERING[export_type]
        raw = self.client.create_table(raw, exists_ok=True)
        canonical = self.client.create_table(canonical, exists_ok=True)
        if raw.time_partitioning is None or raw.time_partitioning.field is not None:
            raise layout_error(
                raw.full_table_id, "raw must be partitioned by ingestion time, one partition per export day"
            )
        if canonical.time_partitioning is None or canonical.time_partitioning.field != EXPORT_DATE:
            raise layout_error(canonical.full_table_id, f"canonical must be partitioned by {EXPORT_DATE}")
        return canonical

    def fill_uuid_keys(self, canonical) -> JobStats:
        """Migrate a canonical table of an earlier release: add ``uuid_key`` and fill it in one UPDATE
        (idempotent), then label the table, so a crash before the label only repeats the UPDATE."""
        if (canonical.labels or {}).get(KEYS_FILLED):
            return JobStats()
        from google.cloud import bigquery

        table = self.ref(canonical.table_id)
        _, stats = self.run_query(sql.add_columns(table, [bigquery.SchemaField(UUID_KEY, "BYTES")]))
        _, filled = self.run_query(sql.fill_uuid_keys(table))
        canonical = self.client.get_table(self.table_id(canonical.table_id))
        canonical.labels = {**(canonical.labels or {}), KEYS_FILLED: "v1"}
        self.client.update_table(canonical, ["labels"])
        return stats + filled

    def load_job_config(self, write_disposition: str = "WRITE_TRUNCATE"):
        """Parquet, list inference, maps as ARRAY<STRUCT<key, value>>, new columns allowed."""
        from google.cloud import bigquery

        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        parquet.map_target_type = "ARRAY_OF_STRUCT"
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=write_disposition,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
            schema_update_options=[bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION],
            parquet_options=parquet,
            labels=jobs.labels(step=self._step),
        )

    def load_uris(
        self, uris: list[str], destination: str, disposition: str = "WRITE_TRUNCATE"
    ) -> tuple[int, JobStats]:
        job = self.client.load_table_from_uri(uris, destination, job_config=self.load_job_config(disposition))
        job.result()
        return int(job.output_rows or 0), job_stats(job)

    def load_raw_day(
        self, export_type: ExportType, day: dt.date, files: list[StagedFile], added: list[pa.Field]
    ) -> LoadResult:
        self.ensure_tables(export_type)
        raw = table_names(export_type).raw
        before = {f.name for f in self.client.get_table(self.table_id(raw)).schema}
        uris = [f.uri for f in files]
        if not uris:
            _, stats = self.run_query(sql.delete_raw_day(self.ref(raw), self.raw_day_filter(day)))
            return LoadResult(0, (), stats)
        try:
            if len(uris) <= URIS_PER_LOAD_JOB:
                rows, stats = self.load_uris(uris, self.raw_partition(export_type, day))
            else:
                rows, stats = scratch.load_many(self, export_type, day, uris)
        except Exception as exc:
            raise RuntimeError(
                name_failed_files(f"loading {export_type.value} {day} failed", exc, files)
            ) from exc
        after = [f.name for f in self.client.get_table(self.table_id(raw)).schema]
        return LoadResult(rows, tuple(n for n in after if n not in before), stats)

    def sync_canonical_columns(self, export_type: ExportType) -> tuple[list[str], tuple[str, ...], JobStats]:
        """Add raw's new columns to canonical (ALTER TABLE) and the fields raw's columns gained inside
        them (tables.patch: DDL cannot add a nested field); returns (source columns, added, jobs)."""
        names = table_names(export_type)
        raw = self.client.get_table(self.table_id(names.raw))
        canonical = self.client.get_table(self.table_id(names.canonical))
        have = {f.name for f in canonical.schema}
        source = [f for f in raw.schema if f.name not in self.non_source_columns]  # raw has no uuid_key
        new = [f for f in source if f.name not in have]
        stats = JobStats()
        if new:
            _, stats = self.run_query(sql.add_columns(self.ref(names.canonical), new))
            canonical = self.client.get_table(self.table_id(names.canonical))
        merged, nested = sql.merge_nested(
            [f.to_api_repr() for f in canonical.schema], [f.to_api_repr() for f in raw.schema]
        )
        if nested:
            from google.cloud import bigquery

            canonical.schema = [bigquery.SchemaField.from_api_repr(f) for f in merged]
            self.client.update_table(canonical, ["schema"])
        return [f.name for f in source], (*(f.name for f in new), *nested), stats

    def day_queries(
        self, export_type: ExportType, day: dt.date, horizon_days: int, columns: list[str] | None = None
    ) -> list[PlannedQuery]:
        """Every query the pipeline runs for one day: what it executes, preflight dry-runs, tests lint."""
        names = table_names(export_type)
        columns = columns or [f["name"] for f in bigquery_source_fields(export_type)]
        return sql.day_queries(
            export_type,
            self.ref(names.raw),
            self.ref(names.canonical),
            self.raw_day_filter(day),
            day,
            dedup_window(day, horizon_days),
            columns,
        )

    def _planned(self, export_type: ExportType, day: dt.date, horizon_days: int, name: str, **kw) -> str:
        return next(p.sql for p in self.day_queries(export_type, day, horizon_days, **kw) if p.name == name)

    def merge_canonical(
        self, export_type: ExportType, day: dt.date, horizon_days: int, history: LoadHistoryRow | None = None
    ) -> MergeStats:
        migrated = self.fill_uuid_keys(self.ensure_tables(export_type))
        columns, added, ddl = self.sync_canonical_columns(export_type)
        ((day_rows, unique, nulls, held),), stats = self.run_query(
            self._planned(export_type, day, horizon_days, "day_stats")
        )
        job = self.run_write(
            self._planned(export_type, day, horizon_days, "merge_canonical", columns=columns),
            table_names(export_type).canonical,
            day,
        )

        def rows_after() -> int:  # only without DML statistics (the emulator)
            ((after,),), _ = self.run_query(
                sql.canonical_day_rows(self.ref(table_names(export_type).canonical), day)
            )
            return int(after)

        inserted, rewritten, removed = jobs.dml_counts(job, int(held), rows_after)
        window = dedup_window(day, horizon_days)
        merged = MergeStats(
            int(day_rows),
            int(unique),
            int(nulls),
            inserted,
            window,
            added,
            migrated + ddl + stats + job_stats(job),
            rewritten=rewritten,
            removed=removed,
        )
        if history is not None:  # right after the MERGE job (history.py: why not in the same job)
            self.record_history(history.succeeded(merged))
        return merged

    def record_history(self, row: LoadHistoryRow) -> None:
        self.run_query(load_history.create_table(self.ref(load_history.TABLE), bigquery=True))
        self.run_query(load_history.insert(self.ref(load_history.TABLE), row, bigquery=True))

    def dry_run(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> list[tuple[str, int | None]]:
        out: list[tuple[str, int | None]] = []
        for planned in self.day_queries(export_type, day, horizon_days):
            config = self.query_config(dry_run=True, use_query_cache=False)
            out.append(
                (
                    planned.name,
                    int(self.client.query(planned.sql, job_config=config).total_bytes_processed or 0),
                )
            )
        return out

    def smoke_load(
        self, export_type: ExportType, day: dt.date, file: StagedFile
    ) -> tuple[int, dict[str, str]]:
        return scratch.smoke_load(self, export_type, day, file)

    def _key_counts(self, query: str) -> DaySummary:
        rows, _ = self.run_query(query)
        counts = keyed_counts(rows)
        return DaySummary(sum(counts.values()), counts)

    def raw_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._key_counts(self._planned(export_type, day, 0, "raw_key_counts"))

    def canonical_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._key_counts(self._planned(export_type, day, 0, "canonical_key_counts"))

    def not_in_raw(self, export_type: ExportType, day: dt.date) -> tuple[int, tuple[str, ...]]:
        return self._not_in_raw(export_type, day)[:2]

    def _not_in_raw(self, export_type: ExportType, day: dt.date) -> tuple[int, tuple[str, ...], int]:
        ((n, examples, bad_keys),), _ = self.run_query(self._planned(export_type, day, 0, "not_in_raw"))
        return int(n), tuple(str(u) for u in examples or ()), int(bad_keys or 0)

    def canonical_findings(
        self, export_type: ExportType, day: dt.date, horizon_days: int
    ) -> tuple[DaySummary, CanonicalFindings]:
        rows, _ = self.run_query(self._planned(export_type, day, horizon_days, "canonical_findings"))
        raw = keyed_counts((v, n) for kind, v, n, _ in rows if kind == "raw")
        missing = keyed_counts((v, n) for kind, v, n, _ in rows if kind == "missing")
        dups = sorted((uuid_text(bytes(k)), int(n)) for kind, _, n, k in rows if kind == "duplicate")
        unkeyed = sum(int(n) for kind, _, n, _ in rows if kind == "unkeyed")
        stale, examples, bad_keys = self._not_in_raw(export_type, day)
        found = CanonicalFindings(missing, dups, stale, examples, unkeyed + bad_keys)
        return DaySummary(sum(raw.values()), raw), found
