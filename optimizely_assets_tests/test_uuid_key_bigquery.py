"""uuid_key on the BigQuery path (bqemulator): the key SQL, a table from before the key upgraded
in place, a crash between the fill and its label, and duplicates named by their exact uuid."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery

from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import bigquery_source_fields
from optimizely_assets.warehouse.bigquery import KEYS_FILLED
from optimizely_assets.warehouse.uuid_key import bigquery_expr, uuid_key
from optimizely_assets_tests import test_bigquery_emulator as emulated
from optimizely_assets_tests.test_bigquery_emulator import DAYS, SPEC, seed_raw
from optimizely_assets_tests.test_uuid_key import _fuzz

T = ExportType.DECISIONS
emulator, warehouse = emulated.emulator, emulated.warehouse  # its fixtures, for this module too


def test_the_emulator_computes_the_key_as_defined(warehouse):
    values = _fuzz(300)
    warehouse.ensure_dataset()
    table = warehouse.table_id("fuzz")
    warehouse.client.create_table(
        bigquery.Table(
            table, schema=[bigquery.SchemaField("i", "INT64"), bigquery.SchemaField("uuid", "STRING")]
        )
    )
    warehouse.client.insert_rows_json(table, [{"i": i, "uuid": v} for i, v in enumerate(values)])
    keys = warehouse.table_id("fuzz_keys")  # into a BYTES column, as canonical's (the emulator returns
    # a computed BYTES value as text)
    warehouse.client.create_table(
        bigquery.Table(keys, schema=[bigquery.SchemaField("i", "INT64"), bigquery.SchemaField("k", "BYTES")])
    )
    warehouse.run_query(f"INSERT INTO `{keys}` (i, k) SELECT i, {bigquery_expr('uuid')} FROM `{table}`")
    rows, _ = warehouse.run_query(f"SELECT i, k FROM `{keys}` ORDER BY i")
    assert [bytes(k) for _, k in rows] == [uuid_key(v) for v in values]


def _previous_layout(warehouse) -> None:
    """canonical as the previous release created it: no uuid_key, no label."""
    warehouse.ensure_dataset()
    fields = [bigquery.SchemaField.from_api_repr(f) for f in bigquery_source_fields(T)]
    table = bigquery.Table(
        warehouse.table_id("decisions"),
        schema=[
            *fields,
            bigquery.SchemaField("export_date", "DATE"),
            bigquery.SchemaField("event_date", "DATE"),
        ],
    )
    table.time_partitioning = bigquery.TimePartitioning(field="export_date")
    warehouse.client.create_table(table)


def _seed(warehouse, emulator, tmp_path):
    _, gcs_root = emulator
    written = write_export(tmp_path / "src", DAYS, SPEC, types=[T])
    for w in written:
        table = pa.concat_tables([pq.read_table(tmp_path / "src" / rel) for rel in sorted(w.files)])
        seed_raw(warehouse, gcs_root, T, w.day, table)
    return written


def _old_merge(warehouse, day) -> None:
    """What the previous release's MERGE left for a first day: each uuid once, without a key."""
    cols = ", ".join(f"`{f['name']}`" for f in bigquery_source_fields(T))
    warehouse.run_query(
        f"INSERT INTO `{warehouse.table_id('decisions')}` ({cols}, export_date, event_date) "
        f"SELECT {cols}, DATE '{day}', DATE(COALESCE(`timestamp`, process_timestamp)) "
        f"FROM `{warehouse.table_id('decisions_raw')}` WHERE _seed_export_date = DATE '{day}' AND uuid IS NOT NULL "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY uuid ORDER BY process_timestamp) = 1"
    )


def _keys(warehouse) -> list[tuple[str, bytes | None]]:
    rows, _ = warehouse.run_query(f"SELECT uuid, uuid_key FROM `{warehouse.table_id('decisions')}`")
    return [(u, None if k is None else bytes(k)) for u, k in rows]


def test_a_table_from_before_the_key_is_upgraded_in_place_and_labelled(warehouse, emulator, tmp_path):
    _previous_layout(warehouse)
    _seed(warehouse, emulator, tmp_path)
    _old_merge(warehouse, DAYS[0])
    stats = warehouse.merge_canonical(T, DAYS[1], 30)
    assert stats.already_present == SPEC.cross_day_duplicates  # day 1's filled keys found the re-sends
    assert all(k == uuid_key(u) for u, k in _keys(warehouse))
    assert warehouse.client.get_table(warehouse.table_id("decisions")).labels[KEYS_FILLED] == "v1"
    jobs_before = stats.jobs.jobs
    again = warehouse.merge_canonical(T, DAYS[1], 30)
    assert again.jobs.jobs == jobs_before - 2  # labelled: no ALTER, no UPDATE again
    for d in DAYS:
        _, found = warehouse.canonical_findings(T, d, 30)
        assert found.duplicates == [] and found.missing == {} and found.unkeyed == 0


def test_a_fill_cut_short_before_its_label_is_finished_by_the_next_merge(warehouse, emulator, tmp_path):
    """The column exists, some keys are NULL, no label: a crash after ALTER, or a killed worker
    whose UPDATE never ran. The next MERGE fills the rest (the UPDATE only touches NULL keys)."""
    _previous_layout(warehouse)
    _seed(warehouse, emulator, tmp_path)
    _old_merge(warehouse, DAYS[0])
    canonical = warehouse.table_id("decisions")
    warehouse.run_query(f"ALTER TABLE `{canonical}` ADD COLUMN uuid_key BYTES")
    table = warehouse.client.get_table(canonical)  # the emulator keeps storage and metadata apart
    table.schema = [*table.schema, bigquery.SchemaField("uuid_key", "BYTES")]
    warehouse.client.update_table(table, ["schema"])
    warehouse.run_query(  # half filled when the worker died
        f"UPDATE `{canonical}` SET uuid_key = {bigquery_expr('uuid')} WHERE MOD(ASCII(uuid), 2) = 0"
    )
    _, found = warehouse.canonical_findings(T, DAYS[1], 30)
    assert found.unkeyed > 0  # before the fill, the checks refuse to vouch for the window
    warehouse.merge_canonical(T, DAYS[1], 30)
    assert all(k == uuid_key(u) for u, k in _keys(warehouse))
    assert warehouse.canonical_findings(T, DAYS[1], 30)[1].unkeyed == 0


def test_a_duplicate_is_named_by_its_exact_uuid(warehouse, emulator, tmp_path):
    warehouse.ensure_tables(T)
    _seed(warehouse, emulator, tmp_path)
    for d in DAYS:
        warehouse.merge_canonical(T, d, 30)
    canonical = warehouse.table_id("decisions")
    # One of day 2's rows gets an uppercase uuid, then a copy of it lands on day 1.
    ((victim,),), _ = warehouse.run_query(
        f"SELECT MIN(uuid) FROM `{canonical}` WHERE export_date = DATE '{DAYS[1]}'"
    )
    upper = victim.upper()
    warehouse.run_query(
        f"UPDATE `{canonical}` SET uuid = '{upper}', uuid_key = {bigquery_expr(repr(upper))} WHERE uuid = '{victim}'"
    )
    warehouse.run_query(
        f"INSERT INTO `{canonical}` SELECT * REPLACE (DATE '{DAYS[0]}' AS export_date) FROM `{canonical}` "
        f"WHERE uuid = '{upper}'"
    )
    assert warehouse.duplicate_uuids(T, DAYS[1], 30) == [(upper, 2)]
