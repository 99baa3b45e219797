"""The loaders `bench.peers` times, each in its own process on the same files.

    python -m bench.contenders <name> <export_dir> <work_dir> <YYYY-MM-DD>...

Every contender loads the given days of both export types into a DuckDB file and ends with one
row per uuid per type:
- ``project``: this project's daily job, end to end (list, footers, stage, raw load, MERGE, checks),
  on a persistent Dagster instance configured by the repo's ``dagster.yaml``;
- ``limit``: the minimal SQL job doing the same work, per day: replace the raw day from
  ``read_parquet``, then insert the uuids canonical lacks, on DuckDB's defaults. Tuned as its users
  would: one ``GROUP BY uuid`` with ``arg_min(row, process_timestamp)`` keeps each uuid's first
  copy (a window function's ``QUALIFY row_number() = 1`` sorts every copy: 1.07x slower, 1.22x CPU);
- ``limit_rg``: the same SQL on a file attached with the project's storage settings (row group
  size, storage version; shown beside the limit: how much of the project's lead is those settings);
- ``dlt``: dlt's filesystem source into DuckDB, ``write_disposition="merge"`` on ``uuid``, reading
  Arrow 100,000 rows at a time (its default, 1,000, runs 1.21x slower, 1.28x CPU: dlt's own docs
  raise ``chunksize`` for large files);
- ``naive``: pandas reads each file and appends it, then a SQL dedup (the floor, not a goal).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

import duckdb

from optimizely_assets.e3.layout import ExportType

REPO = Path(__file__).resolve().parents[1]


def _day_files(export_dir: Path, export_type: ExportType, day: dt.date) -> list[str]:
    return sorted(str(p) for p in export_dir.rglob(f"type={export_type.value}/date={day}/**/*.parquet"))


def prepare_project(work: Path) -> None:
    """A Dagster home with the repo's dagster.yaml (its storage is created by the timed run)."""
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")


def project(export_dir: Path, work: Path, days: list[dt.date]) -> None:
    (work / "source").symlink_to(export_dir, target_is_directory=True)
    home = work / "dagster_home"
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    from optimizely_assets.assets.keys import key
    from optimizely_assets.definitions import DAILY_JOB, build_definitions
    from optimizely_assets.runs import console_log_level
    from optimizely_assets.settings import Settings

    # The embedded default's layout: <dir>/source (the export), <dir>/staging, <dir>/warehouse.duckdb.
    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(work), "OPTIMIZELY_START_DATE": "2020-01-01"})
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    # The loading assets and their checks: the work the peers do (the experiment analysis is extra).
    stages = ("source_files", "staged_files", "raw_table", "canonical")
    selection = [key(t, s) for t in ExportType for s in stages]
    with DagsterInstance.get() as instance:
        for day in days:
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                instance=instance,
                raise_on_error=False,
                run_config=console_log_level("ERROR"),
                asset_selection=selection,
            )
            if not result.success:
                raise SystemExit(f"project: {day} failed")


def _limit_connection(
    path: Path, row_group_size: int | None, storage_version: str | None
) -> duckdb.DuckDBPyConnection:
    if row_group_size is None:
        return duckdb.connect(str(path))
    con = duckdb.connect()
    version = f", STORAGE_VERSION '{storage_version}'" if storage_version else ""
    con.execute(f"ATTACH '{path}' AS limit_db (ROW_GROUP_SIZE {row_group_size}{version})")
    con.execute("USE limit_db")
    return con


def limit(
    export_dir: Path,
    work: Path,
    days: list[dt.date],
    row_group_size: int | None = None,
    storage_version: str | None = None,
) -> None:
    with _limit_connection(work / "limit.duckdb", row_group_size, storage_version) as con:
        con.execute("SET TimeZone = 'UTC'")
        for t in ExportType:
            files = _day_files(export_dir, t, days[0])
            con.execute(
                f"CREATE TABLE {t.value}_raw AS SELECT *, DATE '{days[0]}' AS export_date "
                "FROM read_parquet($f, hive_partitioning = false) LIMIT 0",
                {"f": files},
            )
            con.execute(f"CREATE TABLE {t.value} AS SELECT * FROM {t.value}_raw LIMIT 0")
        for day in days:
            for t in ExportType:
                con.execute("BEGIN")
                con.execute(f"DELETE FROM {t.value}_raw WHERE export_date = DATE '{day}'")
                con.execute(
                    f"INSERT INTO {t.value}_raw SELECT *, DATE '{day}' FROM read_parquet($f, hive_partitioning = false)",
                    {"f": _day_files(export_dir, t, day)},
                )
                con.execute(
                    f"INSERT INTO {t.value} SELECT unnest(arg_min(r, r.process_timestamp)) FROM {t.value}_raw r "
                    f"WHERE export_date = DATE '{day}' AND uuid IS NOT NULL "
                    f"AND NOT EXISTS (SELECT 1 FROM {t.value} c WHERE c.uuid = r.uuid) GROUP BY r.uuid"
                )
                con.execute("COMMIT")


def limit_rg(export_dir: Path, work: Path, days: list[dt.date]) -> None:
    # The warehouse's own storage settings, passed by bench.peers: importing them here would time
    # Dagster's import.
    limit(
        export_dir,
        work,
        days,
        int(os.environ["BENCH_ROW_GROUP_SIZE"]),
        os.environ["BENCH_STORAGE_VERSION"] or None,
    )


def dlt_(export_dir: Path, work: Path, days: list[dt.date]) -> None:
    os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
    os.environ["DLT_DATA_DIR"] = str(work / "dlt_data")
    os.environ["DLT_PROJECT_DIR"] = str(work)
    import dlt
    from dlt.sources.filesystem import filesystem, read_parquet

    pipeline = dlt.pipeline(
        pipeline_name="optimizely_e3",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="e3",
        pipelines_dir=str(work / "dlt_pipelines"),
    )
    for day in days:
        for t in ExportType:
            files = filesystem(
                bucket_url=export_dir.as_uri(), file_glob=f"**/type={t.value}/date={day}/**/*.parquet"
            )
            # Arrow batches: dlt's fast path (its default yields one Python dict per row), in
            # batches of 100,000 rows instead of its default 1,000.
            resource = (files | read_parquet(use_pyarrow=True, chunksize=100_000)).with_name(t.value)
            resource.apply_hints(write_disposition="merge", primary_key="uuid")
            pipeline.run(resource)


def naive(export_dir: Path, work: Path, days: list[dt.date]) -> None:
    import pandas as pd
    import pyarrow as pa

    from optimizely_assets.e3.schemas import SCHEMAS
    from optimizely_assets.warehouse import duckdb_sql

    with duckdb.connect(str(work / "naive.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        for t in ExportType:
            con.execute(duckdb_sql.create_tables(t)[0])
        for day in days:
            for t in ExportType:
                for f in _day_files(export_dir, t, day):
                    # pandas -> Arrow -> table, as google-cloud-bigquery's load_table_from_dataframe does.
                    arrow = pa.Table.from_pandas(pd.read_parquet(f), schema=SCHEMAS[t], preserve_index=False)  # noqa: F841
                    con.execute(
                        f"INSERT INTO {t.value}_raw BY NAME SELECT *, DATE '{day}' AS export_date FROM arrow"
                    )
        for t in ExportType:
            con.execute(f"CREATE TABLE {t.value} AS SELECT DISTINCT ON (uuid) * FROM {t.value}_raw")


CONTENDERS = {"project": project, "limit": limit, "limit_rg": limit_rg, "dlt": dlt_, "naive": naive}


def canonical_rows(name: str, work: Path) -> dict[str, tuple[int, int]]:
    """Rows per type in the contender's deduplicated table: equal across contenders or the run is void."""
    if name == "project":
        path, tables = work / "warehouse.duckdb", {t.value: t.value for t in ExportType}
    elif name == "dlt":
        path, tables = work / "dlt.duckdb", {t.value: f"e3.{t.value}" for t in ExportType}
    else:
        stem = "limit" if name.startswith("limit") else name
        path, tables = work / f"{stem}.duckdb", {t.value: t.value for t in ExportType}
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            k: con.execute(f"SELECT count(*), count(DISTINCT uuid) FROM {v}").fetchone()
            for k, v in tables.items()
        }


if __name__ == "__main__":
    name, export_dir, work_dir, *day_args = sys.argv[1:]
    CONTENDERS[name](Path(export_dir), Path(work_dir), [dt.date.fromisoformat(d) for d in day_args])
