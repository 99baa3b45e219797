"""The BigQuery warehouse through google-cloud-bigquery against bqemulator.

What the emulator runs: table DDL (nested RECORD/REPEATED, partitioning, clustering), schema
patches, the canonical MERGE and the check queries. What it cannot:
- load into a ``$YYYYMMDD`` decorator (asserted on the job configuration we send instead);
- ingestion-time partitions: it rewrites ``_PARTITIONDATE`` to ``CURRENT_DATE`` and drops rows
  inserted through ``_PARTITIONTIME``. The tests seed raw with a ``_seed_export_date`` column and swap
  the one raw-day column (``raw_day_column``, which ``raw_day_filter`` uses) for it;
- ``CAST(string AS BYTES)``, which BigQuery documents as the string's UTF-8 bytes: the emulator
  runs DuckDB's BLOB cast, which reads backslash escapes and rejects non-ASCII text. Its DuckDB's
  ``ENCODE(s, 'utf-8')`` is what BigQuery documents, and the emulator's statements use it instead.
Every other character of the SQL is what production sends, and ``test_bigquery_rules`` lints that
text against BigQuery's rules.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.cloud import bigquery

from optimizely_assets.demo.synthetic import ExportSpec, date_range, partition_table, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import bigquery_source_fields
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.warehouse.bigquery import BigQueryWarehouse
from optimizely_assets.warehouse.bigquery_sql import add_columns, lit
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse
from optimizely_assets.warehouse.uuid_key import uuid_key
from optimizely_assets_tests import tie_data
from optimizely_assets_tests.servers import start_bigquery_emulator

DAYS = date_range(dt.date(2024, 1, 1), 2)
UTF8_CAST = "CAST(uuid AS BYTES)"  # uuid_key.bigquery_expr's UTF-8 bytes of a uuid
SPEC = ExportSpec(decisions_per_day=300, events_per_day=300, experiments=4, cross_day_duplicates=15)


class EmulatorWarehouse(BigQueryWarehouse):
    """Production SQL, but raw's day is a seeded column: the emulator has no ingestion-time partitions."""

    non_source_columns = (*BigQueryWarehouse.non_source_columns, "_seed_export_date")
    # Not `export_date`: DuckDB (under the emulator) would bind that to the MERGE source's alias.
    raw_day_column = "_seed_export_date"

    def run_query(self, query: str, **config):
        return super().run_query(query.replace(UTF8_CAST, "ENCODE(uuid, 'utf-8')"), **config)

    def run_write(self, query: str, table: str, day=None):
        return super().run_write(query.replace(UTF8_CAST, "ENCODE(uuid, 'utf-8')"), table, day)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    work = tmp_path_factory.mktemp("bq")
    gcs_root = work / "gcs"
    gcs_root.mkdir()
    url, proc = start_bigquery_emulator(work, gcs_root)
    yield url, gcs_root
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def warehouse(emulator, request) -> EmulatorWarehouse:
    url, _ = emulator
    return EmulatorWarehouse(
        project="test-project", dataset=f"e3_{request.node.name[-20:].strip('_[]')}", api_endpoint=url
    )


def test_tables_partitioning_nested_types_and_clustering(warehouse):
    for export_type in ExportType:
        warehouse.ensure_tables(export_type)
        warehouse.ensure_tables(export_type)  # idempotent
    raw = warehouse.client.get_table(warehouse.table_id("events_raw"))
    canonical = warehouse.client.get_table(warehouse.table_id("events"))
    fields = {f.name: f for f in raw.schema}
    assert fields["attributes"].field_type == "RECORD" and fields["attributes"].mode == "REPEATED"
    assert fields["tags"].mode == "REPEATED" and [s.name for s in fields["tags"].fields] == ["key", "value"]
    assert fields["timestamp"].field_type == "TIMESTAMP" and fields["revenue"].field_type == "INTEGER"
    # raw: ingestion-time partitions (no column), and nothing from the path
    assert raw.time_partitioning.type_ == "DAY" and raw.time_partitioning.field is None
    assert "event" not in fields and "date" not in fields
    assert canonical.time_partitioning.field == "export_date"
    assert canonical.clustering_fields == ["event_name", "visitor_id"]


def test_load_job_replaces_one_ingestion_time_partition_without_hive_options(warehouse):
    api = warehouse.load_job_config().to_api_repr()["load"]
    assert api["sourceFormat"] == "PARQUET"
    assert api["writeDisposition"] == "WRITE_TRUNCATE"
    assert api["createDisposition"] == "CREATE_NEVER"
    assert api["schemaUpdateOptions"] == ["ALLOW_FIELD_ADDITION"]
    assert api["parquetOptions"] == {"enableListInference": True, "mapTargetType": "ARRAY_OF_STRUCT"}
    assert "hivePartitioningOptions" not in api and "autodetect" not in api
    assert warehouse.raw_partition(ExportType.EVENTS, dt.date(2024, 2, 29)).endswith(".events_raw$20240229")


def _as_bigquery_loads_it(table: pa.Table) -> pa.Table:
    """map<string,string> becomes ARRAY<STRUCT<key, value>> (map_target_type=ARRAY_OF_STRUCT);
    the emulator cannot cast a Parquet MAP, so the seed file carries that shape already."""
    if "tags" not in table.column_names:
        return table
    kv = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    as_list = pa.array(
        [None if m is None else [{"key": k, "value": v} for k, v in m] for m in table["tags"].to_pylist()], kv
    )
    return table.set_column(table.column_names.index("tags"), "tags", as_list)


def seed_raw(
    warehouse: BigQueryWarehouse, gcs_root: Path, export_type: ExportType, day: dt.date, table: pa.Table
):
    """Put one day's rows into raw through the emulator's own load + INSERT (see module docstring)."""
    warehouse.ensure_tables(export_type)
    raw = warehouse.table_id(f"{export_type.value}_raw")
    stage = warehouse.table_id(f"seed_{export_type.value}")
    schema = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_source_fields(export_type)]
    extra = [
        bigquery.SchemaField(n, "STRING") for n in table.column_names if n not in {f.name for f in schema}
    ]
    flat = gcs_root / "seed" / f"{warehouse.dataset}-{export_type.value}-{day}.parquet"
    flat.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_as_bigquery_loads_it(table), flat)
    warehouse.client.delete_table(stage, not_found_ok=True)
    warehouse.client.create_table(bigquery.Table(stage, schema=[*schema, *extra]))
    warehouse.client.load_table_from_uri(
        f"gs://seed/{flat.name}", stage, job_config=bigquery.LoadJobConfig(source_format="PARQUET")
    ).result()
    # As ALLOW_FIELD_ADDITION would. The emulator keeps storage (ALTER) and metadata (patch) apart.
    table_def = warehouse.client.get_table(raw)
    have = {f.name for f in table_def.schema}
    new = [f for f in [bigquery.SchemaField("_seed_export_date", "DATE"), *extra] if f.name not in have]
    if new:
        for f in new:  # one per statement: the emulator applies one ADD COLUMN clause of several
            warehouse.client.query_and_wait(add_columns(f"`{raw}`", [f]))
        table_def.schema = [*table_def.schema, *new]
        warehouse.client.update_table(table_def, ["schema"])
    cols = ", ".join(f"`{n}`" for n in table.column_names)
    warehouse.client.query_and_wait(
        f"INSERT INTO `{raw}` ({cols}, _seed_export_date) SELECT {cols}, {lit(day)} FROM `{stage}`"
    )


def _seed_generated(warehouse, gcs_root, tmp_path, export_type):
    written = write_export(tmp_path / "src", DAYS, SPEC, types=[export_type])
    for w in written:
        table = pa.concat_tables([pq.read_table(tmp_path / "src" / rel) for rel in sorted(w.files)])
        seed_raw(warehouse, gcs_root, export_type, w.day, table)
    return written


def test_merge_dedups_across_days_bounded_by_export_days_and_is_idempotent(warehouse, emulator, tmp_path):
    _, gcs_root = emulator
    written = _seed_generated(warehouse, gcs_root, tmp_path, ExportType.DECISIONS)
    for w in written:
        assert warehouse.raw_day(ExportType.DECISIONS, w.day).rows == w.rows
    first = [warehouse.merge_canonical(ExportType.DECISIONS, d, 30) for d in DAYS]
    assert first[0].inserted == len(written[0].unique_uuids)
    assert first[1].already_present == SPEC.cross_day_duplicates  # re-sent uuids were not inserted twice
    assert first[1].window == (DAYS[1] - dt.timedelta(days=30), DAYS[1] + dt.timedelta(days=30))
    again = [warehouse.merge_canonical(ExportType.DECISIONS, d, 30) for d in reversed(DAYS)]
    assert [s.inserted for s in again] == [0, 0]
    ((rows, distinct),), _ = warehouse.run_query(
        f"SELECT COUNT(*), COUNT(DISTINCT uuid) FROM `{warehouse.table_id('decisions')}`"
    )
    assert rows == distinct == len(written[0].unique_uuids | written[1].unique_uuids)
    for d in DAYS:
        assert warehouse.duplicate_uuids(ExportType.DECISIONS, d, 30) == []
        assert warehouse.missing_from_canonical(ExportType.DECISIONS, d, 30) == {}
        assert (
            warehouse.canonical_day(ExportType.DECISIONS, d).rows
            == [s.inserted for s in first][DAYS.index(d)]
        )


def test_resends_with_other_or_null_timestamps_far_clocks_and_ties_give_the_same_canonical_as_duckdb(
    warehouse, emulator, tmp_path
):
    """One input, both backends: the same uuids, the same winning copy of each, nothing dropped."""
    _, gcs_root = emulator
    days = tie_data.days()
    duck = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    duck.ensure_tables(ExportType.EVENTS)
    for day, table in days.items():
        seed_raw(warehouse, gcs_root, ExportType.EVENTS, day, table)
        path = tmp_path / f"{day}.parquet"
        pq.write_table(table, path)
        duck.load_raw_day(
            ExportType.EVENTS, day, [StagedFile(str(path), f"s3://src/{day}", table.num_rows)], []
        )
    bq_stats = [warehouse.merge_canonical(ExportType.EVENTS, d, 30) for d in days]
    duck_stats = [duck.merge_canonical(ExportType.EVENTS, d, 30) for d in days]
    assert [s.inserted for s in bq_stats] == [s.inserted for s in duck_stats] == tie_data.EXPECTED_INSERTED

    bq_rows, _ = warehouse.run_query(
        f"SELECT uuid, user_ip, export_date, uuid_key FROM `{warehouse.table_id('events')}` ORDER BY uuid"
    )
    with duck.connect() as con:
        duck_rows = con.execute(
            "SELECT uuid, user_ip, export_date, uuid_key FROM events ORDER BY uuid"
        ).fetchall()
    assert [tuple(r) for r in bq_rows] == [tuple(r) for r in duck_rows]
    assert {u: ip for u, ip, _, _ in bq_rows} == tie_data.EXPECTED_WINNERS
    # Both backends store the key uuid_key.py defines; every uuid string its own key.
    assert all(bytes(k) == uuid_key(u) for u, _, _, k in bq_rows)
    assert len({bytes(k) for *_, k in bq_rows}) == len(bq_rows)


def test_a_column_optimizely_adds_reaches_canonical_and_is_reported(warehouse, emulator, tmp_path):
    _, gcs_root = emulator
    day = DAYS[0]
    table = tie_data.plain_day(day, 20)
    table = table.append_column("client_platform", pa.array(["ios"] * table.num_rows))
    seed_raw(warehouse, gcs_root, ExportType.EVENTS, day, table)
    stats = warehouse.merge_canonical(ExportType.EVENTS, day, 30)
    assert stats.added_columns == ("client_platform",)
    rows, _ = warehouse.run_query(
        f"SELECT COUNTIF(client_platform = 'ios') FROM `{warehouse.table_id('events')}`"
    )
    assert rows == [(20,)]
    # (Whether a second MERGE reports it again depends on get_table seeing the ALTER, which the
    # emulator's metadata does not; BigQuery's does.)
    assert warehouse.merge_canonical(ExportType.EVENTS, day, 30).inserted == 0


def test_a_day_over_the_uri_limit_loads_explicit_uri_chunks_then_replaces_the_day_in_one_job(
    warehouse, emulator, monkeypatch
):
    """Days over 10,000 files (here: over 2): no wildcard, because the files' schemas may differ."""
    from google.api_core.exceptions import NotFound

    from optimizely_assets.warehouse import bigquery_scratch

    _, gcs_root = emulator
    monkeypatch.setattr(bigquery_scratch, "URIS_PER_LOAD_JOB", 2)
    monkeypatch.setattr("optimizely_assets.warehouse.bigquery.URIS_PER_LOAD_JOB", 2)
    warehouse.ensure_tables(ExportType.DECISIONS)
    files = []
    for i in range(5):
        table = partition_table(ExportType.DECISIONS, "1", 10, DAYS[0], seed=i)
        path = gcs_root / "stage" / f"{warehouse.dataset}-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        files.append(StagedFile(f"gs://stage/{path.name}", f"s3://src/key {i}", 10))
    # bqemulator rejects the last job: it does not know `raw$YYYYMMDD` is a partition (BigQuery does).
    with pytest.raises(RuntimeError, match="s3://src/key 0"):
        warehouse.load_raw_day(ExportType.DECISIONS, DAYS[0], files, [])
    listed = list(warehouse.client.list_jobs(max_results=10_000))
    jobs = [j for j in listed if j.job_type == "load" and j.destination.dataset_id == warehouse.dataset]
    uris = sorted((j.source_uris for j in jobs), key=len, reverse=True)
    assert [len(u) for u in uris] == [2, 2, 1] and sorted(sum(uris, [])) == sorted(f.uri for f in files)
    assert not any("*" in u for u in sum(uris, []))
    assert {j.destination.table_id for j in jobs} == {"_scratch_decisions_raw_20240101"}
    assert {j.write_disposition for j in jobs} == {"WRITE_APPEND"}
    with pytest.raises(NotFound):  # dropped even though the day failed
        warehouse.client.get_table(warehouse.table_id("_scratch_decisions_raw_20240101"))
    final = warehouse.query_config(
        destination=warehouse.raw_partition(ExportType.DECISIONS, DAYS[0]),
        write_disposition="WRITE_TRUNCATE",
        schema_update_options=["ALLOW_FIELD_ADDITION"],
    ).to_api_repr()["query"]
    assert final["destinationTable"]["tableId"] == "decisions_raw$20240101"


def _redelivered(table: pa.Table) -> pa.Table:
    """The day as Optimizely might re-deliver it: 50 rows gone, 20 with another variation, 30 new uuids."""
    kept = table.slice(50)
    variation = kept["variation_id"].to_pylist()
    variation[:20] = ["redelivered"] * 20
    kept = kept.set_column(kept.column_names.index("variation_id"), "variation_id", pa.array(variation))
    new = table.slice(0, 30)
    new = new.set_column(
        new.column_names.index("uuid"), "uuid", pa.array([f"new-{i:04d}" for i in range(30)])
    )
    return pa.concat_tables([kept, new.cast(kept.schema)])


def test_a_redelivered_day_leaves_canonical_equal_to_its_new_raw_day_on_both_backends(
    warehouse, emulator, tmp_path
):
    """Canonical's day D is a function of raw's day D: a re-run after Optimizely rewrote the day
    deletes what the day no longer has, takes the new values and the new uuids, and the
    canonical_day_within_raw_day finding, zero before, names what would have stayed behind."""
    _, gcs_root = emulator
    t = ExportType.DECISIONS
    written = _seed_generated(warehouse, gcs_root, tmp_path, t)
    d0, d1 = DAYS
    tables = {
        w.day: pa.concat_tables([pq.read_table(tmp_path / "src" / r) for r in sorted(w.files)])
        for w in written
    }
    duck = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    duck.ensure_tables(t)

    def duck_load(day, table):
        path = tmp_path / f"{day}-{table.num_rows}.parquet"
        pq.write_table(table, path)
        duck.load_raw_day(t, day, [StagedFile(str(path), f"s3://src/{day}", table.num_rows)], [])

    for day, table in tables.items():
        duck_load(day, table)
    for wh in (warehouse, duck):
        for day in DAYS:
            wh.merge_canonical(t, day, 30)
        assert wh.not_in_raw(t, d1) == (0, ())

    new = _redelivered(tables[d1])
    warehouse.run_query(
        f"DELETE FROM `{warehouse.table_id('decisions_raw')}` WHERE {warehouse.raw_day_filter(d1)}"
    )
    seed_raw(warehouse, gcs_root, t, d1, new)
    duck_load(d1, new)
    held_by_d0 = {u for u in tables[d0]["uuid"].to_pylist()}
    gone = sorted(set(tables[d1]["uuid"].to_pylist()) - set(new["uuid"].to_pylist()) - held_by_d0)
    for wh in (warehouse, duck):
        n, examples = wh.not_in_raw(t, d1)  # before the re-run: what an insert-only MERGE would keep
        assert n == len(gone) > 0 and list(examples) == gone[:20]
        stats = wh.merge_canonical(t, d1, 30)
        assert wh.not_in_raw(t, d1) == (0, ())
        assert wh.duplicate_uuids(t, d1, 30) == [] and wh.missing_from_canonical(t, d1, 30) == {}
        assert (stats.inserted, stats.removed) == (30, len(gone))
    bq_rows, _ = warehouse.run_query(
        f"SELECT uuid, variation_id FROM `{warehouse.table_id('decisions')}` WHERE export_date = {lit(d1)}"
    )
    with duck.connect() as con:
        duck_rows = con.execute(
            f"SELECT uuid, variation_id FROM decisions WHERE export_date = {lit(d1)}"
        ).fetchall()
    assert sorted(tuple(r) for r in bq_rows) == sorted(tuple(r) for r in duck_rows)
    assert {u for u, _ in duck_rows} == set(new["uuid"].to_pylist()) - held_by_d0
    uuids = new["uuid"].to_pylist()
    changed = {u for u, v in zip(uuids, new["variation_id"].to_pylist(), strict=True) if v == "redelivered"}
    once = {u for u in changed if uuids.count(u) == 1} - held_by_d0
    assert once and {u for u, v in duck_rows if v == "redelivered"} >= once


def test_the_merge_job_has_an_id_from_the_run_and_step_and_a_retry_gets_another(
    warehouse, emulator, tmp_path
):
    _, gcs_root = emulator
    _seed_generated(warehouse, gcs_root, tmp_path, ExportType.DECISIONS)
    first = warehouse.for_step("run-1", "decisions__canonical").merge_canonical(
        ExportType.DECISIONS, DAYS[0], 30
    )
    expected = "optimizely_decisions__canonical_decisions_1_run-1_0"
    assert expected in first.jobs.job_ids
    assert warehouse.client.get_job(expected).state == "DONE"
    # The same step's retry (attempt 1) runs a job of its own: BigQuery never sees an id twice.
    retry = warehouse.for_step("run-1", "decisions__canonical", 1).merge_canonical(
        ExportType.DECISIONS, DAYS[0], 30
    )
    assert "optimizely_decisions__canonical_decisions_1_run-1_1" in retry.jobs.job_ids
    assert retry.inserted == 0
