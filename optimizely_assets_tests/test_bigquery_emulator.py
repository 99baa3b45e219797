"""The BigQuery warehouse code through google-cloud-bigquery against bqemulator.

What the emulator runs: table DDL (nested RECORD/REPEATED, partitioning, clustering), the
canonical MERGE script (JS UDF, DECLARE/SET, MERGE) and the check queries. What it cannot
(load jobs into a ``$YYYYMMDD`` decorator with hive partitioning) is asserted on the job
configuration we send; the same row semantics run end to end on DuckDB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.cloud import bigquery
from optimizely_assets.resources.warehouse import BigQueryWarehouse

from optimizely_assets.layout import ExportType, decode_partition_value
from optimizely_assets.schemas import bigquery_source_fields
from optimizely_assets.synthetic import ExportSpec, date_range, write_export
from optimizely_assets_tests.servers import start_bigquery_emulator

DAYS = date_range(dt.date(2024, 1, 1), 2)
SPEC = ExportSpec(decisions_per_day=300, events_per_day=300, experiments=4, cross_day_duplicates=15)


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
def warehouse(emulator, request) -> BigQueryWarehouse:
    url, _ = emulator
    return BigQueryWarehouse(
        project="test-project", dataset=f"e3_{request.node.name[-20:].strip('_')}", api_endpoint=url
    )


def test_tables_have_nested_types_partitioning_and_clustering(warehouse):
    for export_type in ExportType:
        warehouse.ensure_tables(export_type)
        warehouse.ensure_tables(export_type)  # idempotent
    raw = warehouse.client.get_table(f"{warehouse.project}.{warehouse.dataset}.events_raw")
    canonical = warehouse.client.get_table(f"{warehouse.project}.{warehouse.dataset}.events")
    fields = {f.name: f for f in raw.schema}
    assert fields["attributes"].field_type == "RECORD" and fields["attributes"].mode == "REPEATED"
    assert [s.name for s in fields["attributes"].fields] == ["id", "name", "type", "value"]
    assert fields["tags"].mode == "REPEATED" and [s.name for s in fields["tags"].fields] == ["key", "value"]
    assert fields["experiments"].mode == "REPEATED"
    assert fields["timestamp"].field_type == "TIMESTAMP" and fields["revenue"].field_type == "INTEGER"
    assert raw.time_partitioning.field == "date" and raw.clustering_fields == ["event"]
    assert canonical.time_partitioning.field == "event_date"
    assert canonical.clustering_fields == ["event_name", "visitor_id"]


def test_load_job_replaces_one_day_partition_with_hive_columns(warehouse):
    config = warehouse.load_job_config(ExportType.EVENTS, "gs://stage/optimizely/v1/account_id=1/type=events")
    api = config.to_api_repr()["load"]
    assert api["sourceFormat"] == "PARQUET"
    assert api["writeDisposition"] == "WRITE_TRUNCATE"
    assert api["createDisposition"] == "CREATE_NEVER"
    assert api["schemaUpdateOptions"] == ["ALLOW_FIELD_ADDITION"]
    assert api["hivePartitioningOptions"] == {
        "mode": "CUSTOM",
        "sourceUriPrefix": "gs://stage/optimizely/v1/account_id=1/type=events/{date:DATE}/{event:STRING}",
    }
    assert api["parquetOptions"] == {"enableListInference": True, "mapTargetType": "ARRAY_OF_STRUCT"}
    assert warehouse.raw_partition(ExportType.EVENTS, dt.date(2024, 2, 29)).endswith(".events_raw$20240229")


def _copy_as_bigquery_loads_it(src: Path, dst: Path) -> None:
    """map<string,string> becomes ARRAY<STRUCT<key, value>> (map_target_type=ARRAY_OF_STRUCT);
    the emulator cannot cast a Parquet MAP, so the seed file carries that shape already."""
    table = pq.read_table(src)
    if "tags" in table.column_names:
        i = table.column_names.index("tags")
        kv = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
        as_list = pa.array(
            [
                None if m is None else [{"key": k, "value": v} for k, v in m]
                for m in table["tags"].to_pylist()
            ],
            kv,
        )
        table = table.set_column(i, "tags", as_list)
    pq.write_table(table, dst)


def _seed_raw(warehouse: BigQueryWarehouse, gcs_root: Path, tmp_path: Path, export_type: ExportType):
    """Put generated days into the raw table through the emulator's own load + INSERT."""
    written = write_export(tmp_path / "src", DAYS, SPEC, types=[export_type])
    warehouse.ensure_tables(export_type)
    stage = f"{warehouse.project}.{warehouse.dataset}.seed_{export_type.value}"
    schema = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_source_fields(export_type)]
    key = export_type.partition_column
    for w in written:
        for i, (rel, _) in enumerate(sorted(w.files.items())):
            # A flat path: the emulator would otherwise add hive columns of its own.
            flat = gcs_root / "seed" / f"{export_type.value}-{w.day}-{i}.parquet"
            flat.parent.mkdir(parents=True, exist_ok=True)
            _copy_as_bigquery_loads_it(tmp_path / "src" / rel, flat)
            warehouse.client.delete_table(stage, not_found_ok=True)
            warehouse.client.create_table(bigquery.Table(stage, schema=schema))
            warehouse.client.load_table_from_uri(
                f"gs://seed/{flat.name}", stage, job_config=bigquery.LoadJobConfig(source_format="PARQUET")
            ).result()
            value = rel.split(f"/{key}=")[1].split("/")[0].replace("'", "\\'")
            warehouse.client.query_and_wait(
                f"INSERT INTO `{warehouse.project}.{warehouse.dataset}.{export_type.value}_raw` "
                f"SELECT *, DATE '{w.day}', '{value}' FROM `{stage}`"
            )
    return written


def test_merge_script_dedups_across_days_and_is_idempotent(warehouse, emulator, tmp_path):
    _, gcs_root = emulator
    written = _seed_raw(warehouse, gcs_root, tmp_path, ExportType.DECISIONS)
    for w in written:
        assert warehouse.raw_day(ExportType.DECISIONS, w.day).rows == w.rows
    first = [warehouse.merge_canonical(ExportType.DECISIONS, d, 1) for d in DAYS]
    assert first[0].inserted == len(written[0].unique_uuids)
    assert first[1].already_present == SPEC.cross_day_duplicates  # re-sent uuids were not inserted twice
    again = [warehouse.merge_canonical(ExportType.DECISIONS, d, 1) for d in DAYS]
    assert [s.inserted for s in again] == [0, 0]
    table = f"`{warehouse.project}.{warehouse.dataset}.decisions`"
    ((rows, distinct),) = [
        tuple(r.values())
        for r in warehouse.client.query_and_wait(f"SELECT COUNT(*), COUNT(DISTINCT uuid) FROM {table}")
    ]
    assert rows == distinct == len(written[0].unique_uuids | written[1].unique_uuids)
    for d in DAYS:
        assert warehouse.duplicate_uuids(ExportType.DECISIONS, d, 1) == []
        assert warehouse.missing_from_canonical(ExportType.DECISIONS, d, 1) == {}


def test_merge_decodes_event_partition_values(warehouse, emulator, tmp_path):
    _, gcs_root = emulator
    written = _seed_raw(warehouse, gcs_root, tmp_path, ExportType.EVENTS)
    warehouse.merge_canonical(ExportType.EVENTS, DAYS[0], 1)
    summary = warehouse.canonical_day(ExportType.EVENTS, DAYS[0])
    raw_values = {rel.split("/event=")[1].split("/")[0] for rel in written[0].files}
    assert set(summary.partition_rows) == {decode_partition_value(v) for v in raw_values}
    assert "Main_Nav_javascript:void(0);" in summary.partition_rows
