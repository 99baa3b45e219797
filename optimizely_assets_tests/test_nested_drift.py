"""A field Optimizely adds inside a nested column (``attributes[].source``): reported and kept.

DuckDB's INSERT BY NAME drops a struct field the table lacks, without a word; BigQuery's load
widens raw (ALLOW_FIELD_ADDITION) but DDL cannot widen canonical. Both now widen both tables.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import SCHEMAS, nested_added, schema_drift, show_path
from optimizely_assets.warehouse.bigquery_sql import merge_nested
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import checks_of, local_settings, query, run_day

T = ExportType.EVENTS


def with_source(table: pa.Table) -> pa.Table:
    """Every attribute of every row gains ``source`` = "sdk-<its id>"."""
    attrs = table["attributes"].combine_chunks()
    items = attrs.values
    fields = [items.field(i) for i in range(items.type.num_fields)]
    source = pa.array([None if i is None else f"sdk-{i}" for i in items.field("id").to_pylist()])
    struct = pa.StructArray.from_arrays([*fields, source], names=[*(f.name for f in items.type), "source"])
    widened = pa.ListArray.from_arrays(attrs.offsets, struct, mask=attrs.is_null())
    return table.set_column(table.column_names.index("attributes"), "attributes", widened)


def test_nested_additions_are_found_at_any_depth_and_named_as_users_read_them():
    schema = SCHEMAS[T]
    widened = with_source(
        pa.table(
            {
                "attributes": pa.array(
                    [[{"id": "1", "name": "n", "type": "t", "value": "v"}]], schema.field("attributes").type
                )
            }
        )
    )
    new_type = widened.schema.field("attributes").type
    assert [
        (show_path(p), str(t))
        for p, t in nested_added(schema.field("attributes").type, new_type, ("attributes",))
    ] == [("attributes[].source", "string")]
    actual = pa.schema([pa.field("attributes", new_type) if f.name == "attributes" else f for f in schema])
    assert schema_drift(schema, actual) == {
        "added": [],
        "missing": [],
        "retyped": [],
        "widened": ["attributes"],
    }
    deep = pa.struct(
        [
            (
                "a",
                pa.list_(
                    pa.struct(
                        [("b", pa.map_(pa.string(), pa.struct([("c", pa.int64()), ("d", pa.int64())])))]
                    )
                ),
            )
        ]
    )
    shallow = pa.struct(
        [("a", pa.list_(pa.struct([("b", pa.map_(pa.string(), pa.struct([("c", pa.int64())])))])))]
    )
    assert [show_path(p) for p, _ in nested_added(shallow, deep, ("x",))] == ["x.a[].b{}.d"]
    have = [
        {
            "name": "attributes",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [{"name": "id", "type": "STRING"}],
        }
    ]
    new = [{**have[0], "fields": [{"name": "id", "type": "STRING"}, {"name": "source", "type": "STRING"}]}]
    merged, added = merge_nested(have, new)
    assert added == ["attributes[].source"] and merged == new


def test_a_field_added_inside_attributes_is_reported_and_reaches_raw_and_canonical_on_duckdb(tmp_path):
    settings = local_settings(tmp_path / "local")
    written = [w for w in write_export(settings.local_source_dir, [START], SMALL) if w.export_type is T]
    expected = []
    for rel in sorted(written[0].files):  # every file of the day: every attribute has a source
        table = with_source(pq.read_table(settings.local_source_dir / rel))
        write_parquet(table, settings.local_source_dir / rel)
        expected += [
            f"sdk-{a['id']}" for row in table["attributes"].to_pylist() if row for a in row if a["id"]
        ]
    expected.sort()
    assert expected

    result = run_day(settings, START, DagsterInstance.ephemeral())
    assert result.success
    checks = checks_of(result)
    assert checks.pop(f"{T.value}/source_files:schema_drift") is False
    assert all(checks.values()), checks
    (drift,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "schema_drift" and not e.passed
    ]
    assert "new fields inside columns attributes[].source" in drift.description
    assert drift.metadata["added_nested_fields"].value == ["attributes[].source"]
    got = query(
        settings,
        f"SELECT a.source FROM (SELECT unnest(attributes) AS a FROM {T.value}_raw) WHERE a.source IS NOT NULL",
    )
    assert sorted(s for (s,) in got) == expected
    # Canonical keeps one copy per uuid: each of its attributes kept its source, none lost it.
    ((kept, lost),) = query(
        settings,
        "SELECT count(a.source), count(*) FILTER (WHERE a.source IS DISTINCT FROM 'sdk-' || a.id) "
        f"FROM (SELECT unnest(attributes) AS a FROM {T.value} WHERE export_date = ?) WHERE a.id IS NOT NULL",
        [START],
    )
    assert kept > 0 and lost == 0


@pytest.mark.parametrize("existing", [False, True])
def test_canonical_follows_a_nested_field_raw_gained_on_bigquery(tmp_path, existing):
    """tables.patch with the merged schema; done twice, it changes nothing."""
    from google.cloud import bigquery

    from optimizely_assets_tests.servers import start_bigquery_emulator
    from optimizely_assets_tests.test_bigquery_emulator import EmulatorWarehouse

    gcs = tmp_path / "gcs"
    gcs.mkdir()
    url, proc = start_bigquery_emulator(tmp_path, gcs)
    try:
        wh = EmulatorWarehouse(project="test-project", dataset="nested", api_endpoint=url)
        wh.ensure_tables(T)
        raw = wh.client.get_table(wh.table_id(f"{T.value}_raw"))
        fields = [f.to_api_repr() for f in raw.schema]
        for f in fields:
            if f["name"] == "attributes":
                f["fields"].append({"name": "source", "type": "STRING", "mode": "NULLABLE"})
        raw.schema = [bigquery.SchemaField.from_api_repr(f) for f in fields]
        wh.client.update_table(raw, ["schema"])  # what ALLOW_FIELD_ADDITION does on the load
        _, added, _ = wh.sync_canonical_columns(T)
        if existing:
            _, added, _ = wh.sync_canonical_columns(T)
            assert added == ()
        else:
            assert added == ("attributes[].source",)
        canonical = wh.client.get_table(wh.table_id(T.value))
        (attributes,) = [f for f in canonical.schema if f.name == "attributes"]
        assert [f.name for f in attributes.fields][-1] == "source"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
