"""The warehouse: BigQuery in the cloud, DuckDB embedded. Same tables, same SQL semantics.

The worker never pulls rows: loads are ``read_parquet`` / load jobs, dedup is a MERGE,
and checks are aggregate queries.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from optimizely_assets import warehouse_sql as sql
from optimizely_assets.layout import ExportType, compact_date, decode_partition_value
from optimizely_assets.schemas import bigquery_source_fields

URI_LIMIT_PER_LOAD_JOB = 10_000


@dataclass(frozen=True)
class MergeStats:
    day_rows: int  # raw rows of the export day
    unique_uuids: int  # distinct non-null uuids among them
    null_uuid_rows: int  # rows that cannot be deduplicated and are left out of canonical
    inserted: int  # new uuids written to canonical
    window: tuple[str, str] | None  # event_date range of the target that was scanned

    @property
    def already_present(self) -> int:
        return self.unique_uuids - self.inserted


@dataclass(frozen=True)
class DaySummary:
    rows: int
    partition_rows: dict[str, int] = field(default_factory=dict)  # experiment/event -> rows


class Warehouse(ConfigurableResource):
    def ensure_tables(self, export_type: ExportType) -> None:
        raise NotImplementedError

    def load_raw_day(self, export_type: ExportType, day: dt.date, uris: list[str], type_root_uri: str) -> int:
        raise NotImplementedError

    def merge_canonical(self, export_type: ExportType, day: dt.date, lookback_days: int) -> MergeStats:
        raise NotImplementedError

    def raw_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        raise NotImplementedError

    def canonical_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        raise NotImplementedError

    def duplicate_uuids(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> list[tuple[str, int]]:
        raise NotImplementedError

    def missing_from_canonical(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> dict[str, int]:
        """Per experiment/event (decoded): raw uuids of the day that canonical lacks."""
        raise NotImplementedError

    def describe(self, export_type: ExportType) -> dict[str, str]:
        raise NotImplementedError


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


class DuckDBWarehouse(Warehouse):
    """DuckDB file as the embedded warehouse. One writer process at a time: waits for the lock."""

    path: str = Field(description="DuckDB database file.")
    memory_limit: str = Field(
        default="512MB", description="DuckDB memory_limit; sorts and joins spill to disk beyond it."
    )
    lock_timeout_seconds: float = 600.0

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(self.path)
                break
            except duckdb.IOException as exc:
                # Another run's step holds the file; DuckDB allows one writing process.
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
        try:
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
            yield con
        finally:
            con.close()

    def ensure_tables(self, export_type: ExportType) -> None:
        with self.connect() as con:
            for stmt in sql.duckdb_create_tables(export_type):
                con.execute(stmt)

    def load_raw_day(
        self, export_type: ExportType, day: dt.date, uris: list[str], type_root_uri: str = ""
    ) -> int:
        """Replace the day's partition in one transaction: fully replaced or untouched."""
        t = sql.table_names(export_type)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for stmt in sql.duckdb_replace_raw_day(export_type, day, len(uris)):
                    con.execute(stmt, {"files": uris} if "$files" in stmt else None)
                (rows,) = con.execute(f'SELECT count(*) FROM {t.raw} WHERE "date" = ?', [day]).fetchone()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(rows)

    def merge_canonical(self, export_type: ExportType, day: dt.date, lookback_days: int) -> MergeStats:
        t = sql.table_names(export_type)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                day_rows, nulls, lo, hi = con.execute(
                    sql.duckdb_day_stats(export_type, day, lookback_days)
                ).fetchone()
                unique = inserted = 0
                if lo is not None:
                    con.execute(sql.duckdb_day_winners(export_type, day))
                    (unique,) = con.execute("SELECT count(*) FROM _winners").fetchone()
                    before = self._canonical_count(con, t.canonical, day, lo, hi)
                    con.execute(sql.duckdb_merge_canonical(export_type, day, lo, hi))
                    inserted = self._canonical_count(con, t.canonical, day, lo, hi) - before
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        window = (lo.isoformat(), hi.isoformat()) if lo is not None else None
        return MergeStats(int(day_rows), int(unique), int(nulls), int(inserted), window)

    @staticmethod
    def _canonical_count(
        con: duckdb.DuckDBPyConnection, table: str, day: dt.date, lo: dt.date, hi: dt.date
    ) -> int:
        # Every canonical row of this export day lies inside [lo, hi]: the scan stays bounded.
        return int(
            con.execute(
                f"SELECT count(*) FROM {table} WHERE event_date BETWEEN ? AND ? AND export_date = ?",
                [lo, hi, day],
            ).fetchone()[0]
        )

    def _partition_rows(self, table: str, key: str, date_col: str, day: dt.date) -> DaySummary:
        with self.connect() as con:
            rows = con.execute(
                f'SELECT "{key}", count(*) FROM {table} WHERE "{date_col}" = ? GROUP BY 1', [day]
            ).fetchall()
        counts = {str(k): int(n) for k, n in rows}
        return DaySummary(sum(counts.values()), counts)

    def raw_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._partition_rows(
            sql.table_names(export_type).raw, export_type.partition_column, "date", day
        )

    def canonical_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._partition_rows(
            sql.table_names(export_type).canonical, export_type.partition_column, "export_date", day
        )

    def duplicate_uuids(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> list[tuple[str, int]]:
        """uuids of the day's canonical rows that occur more than once in canonical."""
        t = sql.table_names(export_type)
        with self.connect() as con:
            return [
                (str(u), int(n))
                for u, n in con.execute(
                    f"SELECT uuid, count(*) FROM {t.canonical} WHERE uuid IN "
                    f"(SELECT uuid FROM {t.canonical} WHERE export_date = ?) "
                    f"GROUP BY uuid HAVING count(*) > 1 ORDER BY uuid LIMIT 20",
                    [day],
                ).fetchall()
            ]

    def missing_from_canonical(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> dict[str, int]:
        t = sql.table_names(export_type)
        key = export_type.partition_column
        with self.connect() as con:
            *_, lo, hi = con.execute(sql.duckdb_day_stats(export_type, day, lookback_days)).fetchone()
            if lo is None:
                return {}
            rows = con.execute(
                f'SELECT url_decode(r."{key}"), count(DISTINCT r.uuid) FROM {t.raw} r '
                f"ANTI JOIN (SELECT uuid FROM {t.canonical} WHERE event_date BETWEEN ? AND ?) c "
                f"ON c.uuid = r.uuid "
                f'WHERE r."date" = ? AND r.uuid IS NOT NULL GROUP BY 1',
                [lo, hi, day],
            ).fetchall()
        return {str(k): int(n) for k, n in rows}

    def describe(self, export_type: ExportType) -> dict[str, str]:
        t = sql.table_names(export_type)
        return {
            "warehouse": "duckdb",
            "database": self.path,
            "raw_table": t.raw,
            "canonical_table": t.canonical,
        }


class BigQueryWarehouse(Warehouse):
    """BigQuery: load jobs from staged gs:// URIs, MERGE scripts for the canonical tables."""

    project: str = Field(description="GCP project that runs the jobs and holds the dataset.")
    dataset: str = "optimizely_e3"
    location: str = "US"
    api_endpoint: str | None = Field(default=None, description="Emulator endpoint; unset for BigQuery.")

    _client = PrivateAttr(default=None)

    @property
    def client(self):
        if self._client is None:
            from google.cloud import bigquery

            if self.api_endpoint:
                from google.auth.credentials import AnonymousCredentials

                self._client = bigquery.Client(
                    project=self.project,
                    location=self.location,
                    credentials=AnonymousCredentials(),
                    client_options={"api_endpoint": self.api_endpoint},
                )
            else:
                self._client = bigquery.Client(project=self.project, location=self.location)
        return self._client

    def _table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def ensure_tables(self, export_type: ExportType) -> None:
        from google.cloud import bigquery

        self.client.create_dataset(bigquery.Dataset(f"{self.project}.{self.dataset}"), exists_ok=True)
        names = sql.table_names(export_type)
        key = export_type.partition_column
        source = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_source_fields(export_type)]

        raw = bigquery.Table(
            self._table_id(names.raw),
            schema=[*source, bigquery.SchemaField("date", "DATE"), bigquery.SchemaField(key, "STRING")],
        )
        raw.time_partitioning = bigquery.TimePartitioning(field="date")
        raw.clustering_fields = [key]
        canonical = bigquery.Table(
            self._table_id(names.canonical),
            schema=[
                *source,
                bigquery.SchemaField("export_date", "DATE"),
                bigquery.SchemaField(key, "STRING"),
                bigquery.SchemaField("event_date", "DATE"),
            ],
        )
        canonical.time_partitioning = bigquery.TimePartitioning(field="event_date")
        canonical.clustering_fields = sql.CLUSTERING[export_type]
        for table in (raw, canonical):
            self.client.create_table(table, exists_ok=True)

    def load_job_config(self, export_type: ExportType, type_root_uri: str):
        """Parquet load into ``raw$YYYYMMDD``: WRITE_TRUNCATE replaces exactly that day."""
        from google.cloud import bigquery

        key = export_type.partition_column
        hive = bigquery.HivePartitioningOptions()
        hive.mode = "CUSTOM"
        hive.source_uri_prefix = f"{type_root_uri.rstrip('/')}/{{date:DATE}}/{{{key}:STRING}}"
        parquet = bigquery.ParquetOptions()
        parquet.enable_list_inference = True
        parquet.map_target_type = "ARRAY_OF_STRUCT"
        return bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
            schema_update_options=[bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION],
            hive_partitioning=hive,
            parquet_options=parquet,
        )

    def raw_partition(self, export_type: ExportType, day: dt.date) -> str:
        """``project.dataset.t_raw$YYYYMMDD``: WRITE_TRUNCATE to it replaces exactly one day."""
        return f"{self._table_id(sql.table_names(export_type).raw)}${compact_date(day)}"

    def load_raw_day(
        self, export_type: ExportType, day: dt.date, uris: list[str], type_root_uri: str = ""
    ) -> int:
        names = sql.table_names(export_type)
        destination = self.raw_partition(export_type, day)
        if not uris:
            # An empty day still replaces the partition, with nothing.
            self.client.query_and_wait(
                f"DELETE FROM `{self._table_id(names.raw)}` WHERE `date` = @day",
                job_config=self._params(day=day),
            )
            return 0
        if len(uris) > URI_LIMIT_PER_LOAD_JOB:
            # Staging holds exactly the day's manifest (stale files are deleted), so the
            # day prefix wildcard names the same files in one job.
            uris = [uris[0].split("/date=")[0] + f"/date={day.isoformat()}/*"]
        job = self.client.load_table_from_uri(
            uris, destination, job_config=self.load_job_config(export_type, type_root_uri)
        )
        job.result()
        return int(job.output_rows or 0)

    def _params(self, **values):
        from google.cloud import bigquery

        params = []
        for name, value in values.items():
            kind = "DATE" if isinstance(value, dt.date) else "INT64"
            params.append(bigquery.ScalarQueryParameter(name, kind, value))
        return bigquery.QueryJobConfig(query_parameters=params)

    def _scalar_rows(self, query: str, **params) -> list[tuple]:
        return [
            tuple(r.values()) for r in self.client.query_and_wait(query, job_config=self._params(**params))
        ]

    def _day_window(self, export_type: ExportType, day: dt.date, lookback_days: int) -> tuple:
        """(rows, distinct uuids, null uuids, lo, hi) of the raw day; [lo, hi] bounds target scans."""
        raw = f"`{self._table_id(sql.table_names(export_type).raw)}`"
        return self._scalar_rows(
            f"SELECT COUNT(*), COUNT(DISTINCT uuid), COUNTIF(uuid IS NULL), "
            f"DATE_SUB(MIN(DATE(COALESCE(`timestamp`, process_timestamp))), INTERVAL @lookback DAY), "
            f"DATE_ADD(MAX(DATE(COALESCE(`timestamp`, process_timestamp))), INTERVAL @lookback DAY) "
            f"FROM {raw} WHERE `date` = @day",
            day=day,
            lookback=lookback_days,
        )[0]

    def merge_canonical(self, export_type: ExportType, day: dt.date, lookback_days: int) -> MergeStats:
        names = sql.table_names(export_type)
        day_rows, unique, nulls, lo, hi = self._day_window(export_type, day, lookback_days)
        canonical = f"`{self._table_id(names.canonical)}`"

        def day_count() -> int:
            # Every canonical row of this export day has its event_date inside [lo, hi]: bounded scan.
            if lo is None:
                return 0
            return int(
                self._scalar_rows(
                    f"SELECT COUNT(*) FROM {canonical} WHERE event_date BETWEEN @lo AND @hi AND export_date = @day",
                    lo=lo,
                    hi=hi,
                    day=day,
                )[0][0]
            )

        before = day_count()
        self.client.query(
            sql.bigquery_merge_canonical(export_type, self.project, self.dataset, day, lookback_days)
        ).result()
        inserted = day_count() - before
        window = (lo.isoformat(), hi.isoformat()) if lo is not None else None
        return MergeStats(int(day_rows), int(unique), int(nulls), inserted, window)

    def _partition_rows(self, table: str, key: str, date_col: str, day: dt.date) -> DaySummary:
        rows = self._scalar_rows(
            f"SELECT `{key}`, COUNT(*) FROM `{self._table_id(table)}` WHERE `{date_col}` = @day GROUP BY 1",
            day=day,
        )
        counts = {str(k): int(n) for k, n in rows}
        return DaySummary(sum(counts.values()), counts)

    def raw_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._partition_rows(
            sql.table_names(export_type).raw, export_type.partition_column, "date", day
        )

    def canonical_day(self, export_type: ExportType, day: dt.date) -> DaySummary:
        return self._partition_rows(
            sql.table_names(export_type).canonical, export_type.partition_column, "export_date", day
        )

    def duplicate_uuids(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> list[tuple[str, int]]:
        """Bounded like the MERGE: only canonical partitions inside the day's event-date window."""
        *_, lo, hi = self._day_window(export_type, day, lookback_days)
        if lo is None:
            return []
        c = f"`{self._table_id(sql.table_names(export_type).canonical)}`"
        return [
            (str(u), int(n))
            for u, n in self._scalar_rows(
                f"SELECT uuid, COUNT(*) FROM {c} WHERE event_date BETWEEN @lo AND @hi "
                f"AND uuid IN (SELECT uuid FROM {c} WHERE event_date BETWEEN @lo AND @hi AND export_date = @day) "
                f"GROUP BY uuid HAVING COUNT(*) > 1 ORDER BY uuid LIMIT 20",
                day=day,
                lo=lo,
                hi=hi,
            )
        ]

    def missing_from_canonical(
        self, export_type: ExportType, day: dt.date, lookback_days: int
    ) -> dict[str, int]:
        *_, lo, hi = self._day_window(export_type, day, lookback_days)
        if lo is None:
            return {}
        names = sql.table_names(export_type)
        key = export_type.partition_column
        raw, c = f"`{self._table_id(names.raw)}`", f"`{self._table_id(names.canonical)}`"
        rows = self._scalar_rows(
            f"SELECT r.`{key}`, COUNT(DISTINCT r.uuid) FROM {raw} r "
            f"LEFT JOIN (SELECT uuid FROM {c} WHERE event_date BETWEEN @lo AND @hi) t ON t.uuid = r.uuid "
            f"WHERE r.`date` = @day AND r.uuid IS NOT NULL AND t.uuid IS NULL GROUP BY 1",
            day=day,
            lo=lo,
            hi=hi,
        )
        return {decode_partition_value(str(k)): int(n) for k, n in rows}

    def describe(self, export_type: ExportType) -> dict[str, str]:
        t = sql.table_names(export_type)
        return {
            "warehouse": "bigquery",
            "raw_table": self._table_id(t.raw),
            "canonical_table": self._table_id(t.canonical),
        }
