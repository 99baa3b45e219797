"""Pure parts: key layout, partition escaping, schemas against the reference's verbatim Spark JSON."""

from __future__ import annotations

import datetime as dt
import json
import re

import pyarrow.parquet as pq
import pytest

from optimizely_assets.demo.synthetic import ExportSpec, write_export
from optimizely_assets.e3.layout import (
    ExportType,
    UnmappableKeyError,
    account_id_from_s3_path,
    day_prefix,
    decode_partition_value,
    encode_partition_value,
    is_data_file,
    partition_value_of,
    split_s3_path,
    staged_name,
    success_key,
)
from optimizely_assets.e3.schemas import (
    DECISIONS_SCHEMA,
    EVENTS_SCHEMA,
    SPARK_METADATA_KEY,
    bigquery_source_fields,
    schema_drift,
    spark_schema_json,
)

# Verbatim from shared/reference/optimizely-e3-export.md §2.1 (footer of Optimizely's sample files).
DECISIONS_SPARK = '{"type":"struct","fields":[{"name":"uuid","type":"string","nullable":true,"metadata":{}},{"name":"timestamp","type":"timestamp","nullable":true,"metadata":{}},{"name":"process_timestamp","type":"timestamp","nullable":true,"metadata":{}},{"name":"visitor_id","type":"string","nullable":true,"metadata":{}},{"name":"session_id","type":"string","nullable":true,"metadata":{}},{"name":"account_id","type":"string","nullable":true,"metadata":{}},{"name":"campaign_id","type":"string","nullable":true,"metadata":{}},{"name":"experiment_id","type":"string","nullable":true,"metadata":{}},{"name":"variation_id","type":"string","nullable":true,"metadata":{}},{"name":"attributes","type":{"type":"array","elementType":{"type":"struct","fields":[{"name":"id","type":"string","nullable":true,"metadata":{}},{"name":"name","type":"string","nullable":true,"metadata":{}},{"name":"type","type":"string","nullable":true,"metadata":{}},{"name":"value","type":"string","nullable":true,"metadata":{}}]},"containsNull":true},"nullable":true,"metadata":{}},{"name":"user_ip","type":"string","nullable":true,"metadata":{}},{"name":"user_agent","type":"string","nullable":true,"metadata":{}},{"name":"referer","type":"string","nullable":true,"metadata":{}},{"name":"is_holdback","type":"boolean","nullable":true,"metadata":{}},{"name":"revision","type":"string","nullable":true,"metadata":{}},{"name":"client_engine","type":"string","nullable":true,"metadata":{}},{"name":"client_version","type":"string","nullable":true,"metadata":{}}]}'
EVENTS_SPARK = '{"type":"struct","fields":[{"name":"uuid","type":"string","nullable":true,"metadata":{}},{"name":"timestamp","type":"timestamp","nullable":true,"metadata":{}},{"name":"process_timestamp","type":"timestamp","nullable":true,"metadata":{}},{"name":"visitor_id","type":"string","nullable":true,"metadata":{}},{"name":"session_id","type":"string","nullable":true,"metadata":{}},{"name":"account_id","type":"string","nullable":true,"metadata":{}},{"name":"experiments","type":{"type":"array","elementType":{"type":"struct","fields":[{"name":"campaign_id","type":"string","nullable":true,"metadata":{}},{"name":"experiment_id","type":"string","nullable":true,"metadata":{}},{"name":"variation_id","type":"string","nullable":true,"metadata":{}},{"name":"is_holdback","type":"boolean","nullable":true,"metadata":{}}]},"containsNull":true},"nullable":true,"metadata":{}},{"name":"entity_id","type":"string","nullable":true,"metadata":{}},{"name":"attributes","type":{"type":"array","elementType":{"type":"struct","fields":[{"name":"id","type":"string","nullable":true,"metadata":{}},{"name":"name","type":"string","nullable":true,"metadata":{}},{"name":"type","type":"string","nullable":true,"metadata":{}},{"name":"value","type":"string","nullable":true,"metadata":{}}]},"containsNull":true},"nullable":true,"metadata":{}},{"name":"user_ip","type":"string","nullable":true,"metadata":{}},{"name":"user_agent","type":"string","nullable":true,"metadata":{}},{"name":"referer","type":"string","nullable":true,"metadata":{}},{"name":"event_type","type":"string","nullable":true,"metadata":{}},{"name":"event_name","type":"string","nullable":true,"metadata":{}},{"name":"revenue","type":"long","nullable":true,"metadata":{}},{"name":"value","type":"double","nullable":true,"metadata":{}},{"name":"quantity","type":"long","nullable":true,"metadata":{}},{"name":"tags","type":{"type":"map","keyType":"string","valueType":"string","valueContainsNull":true},"nullable":true,"metadata":{}},{"name":"revision","type":"string","nullable":true,"metadata":{}},{"name":"client_engine","type":"string","nullable":true,"metadata":{}},{"name":"client_version","type":"string","nullable":true,"metadata":{}}]}'


def test_schemas_match_optimizelys_spark_schema_exactly():
    assert spark_schema_json(DECISIONS_SCHEMA) == DECISIONS_SPARK
    assert spark_schema_json(EVENTS_SCHEMA) == EVENTS_SPARK


def test_generated_files_carry_the_real_footer_schema_and_ms_utc_timestamps(tmp_path):
    written = write_export(
        tmp_path, [dt.date(2024, 3, 1)], ExportSpec(decisions_per_day=200, events_per_day=200)
    )
    for w in written:
        for key in w.files:
            meta = pq.read_metadata(tmp_path / key)
            spark = meta.metadata[SPARK_METADATA_KEY].decode()
            assert spark == (DECISIONS_SPARK if w.export_type is ExportType.DECISIONS else EVENTS_SPARK)
            ts = meta.schema.to_arrow_schema().field("timestamp").type
            assert ts.unit == "ms" and ts.tz == "UTC"
            assert meta.num_row_groups == 1
            assert key.endswith(".c000.snappy.parquet") and "/part-00000-" in key


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("Main_Nav_javascript:void(0);", "Main_Nav_javascript%3Avoid(0);"),
        ("search query/results", "search query%2Fresults"),
        ("a=b?c#d%", "a%3Db%3Fc%23d%25"),
        ("purchase", "purchase"),
    ],
)
def test_partition_values_escape_like_spark_and_round_trip(name, encoded):
    assert encode_partition_value(name) == encoded
    assert decode_partition_value(encoded) == name


def test_decoding_keeps_a_value_that_is_not_utf8_as_written():
    assert decode_partition_value("caf%C3%A9") == "café"
    assert decode_partition_value("caf%E9") == "caf%E9"  # not UTF-8: kept, never a U+FFFD


@pytest.mark.parametrize(
    "tail",
    [
        "event=a*/part-0.parquet",
        "event=a?/part-0.parquet",
        "event=[ab]/part-0.parquet",
        "event={a,b}/part-0.parquet",
        "event=x/../../../../etc/part-0.parquet",
        "event=caf%E9/part 0 [copy].parquet",
    ],
)
def test_staged_names_are_safe_and_stay_in_the_day_whatever_the_key(tail):
    root = "v1/account_id=123"
    prefix = day_prefix(root, ExportType.EVENTS, "2024-01-02")
    name = staged_name(root, ExportType.EVENTS, "2024-01-02", prefix + tail)
    assert name.startswith(prefix)
    assert re.fullmatch(r"[0-9a-f]{32}\.parquet", name[len(prefix) :])
    assert name != staged_name(root, ExportType.EVENTS, "2024-01-02", prefix + tail + "x")


def test_keys_outside_the_day_cannot_be_staged_and_are_named():
    root = "v1/account_id=123"
    with pytest.raises(UnmappableKeyError, match="date=2024-01-03/event=a/p.parquet"):
        staged_name(
            root, ExportType.EVENTS, "2024-01-02", f"{root}/type=events/date=2024-01-03/event=a/p.parquet"
        )
    with pytest.raises(UnmappableKeyError, match="root"):
        staged_name(
            "v1/account_id=1*",
            ExportType.EVENTS,
            "2024-01-02",
            "v1/account_id=1*/type=events/date=2024-01-02/x",
        )


def test_keys_and_paths():
    root = "v1/account_id=123"
    assert (
        day_prefix(root, ExportType.EVENTS, dt.date(2024, 1, 2))
        == "v1/account_id=123/type=events/date=2024-01-02/"
    )
    assert success_key(root, ExportType.DECISIONS, "2024-01-02").endswith(
        "type=decisions/date=2024-01-02/_SUCCESS"
    )
    key = "v1/account_id=123/type=events/date=2020-05-23/event=Main_Nav_javascript%3Avoid(0);/part-0.c000.snappy.parquet"
    assert partition_value_of(key, ExportType.EVENTS) == "Main_Nav_javascript%3Avoid(0);"
    assert is_data_file(key)
    assert not is_data_file("v1/account_id=123/type=events/date=2020-05-23/_SUCCESS")
    assert not is_data_file("v1/x/.part-00000.c000.snappy.parquet.crc")
    with pytest.raises(ValueError, match="experiment="):
        partition_value_of(
            "v1/account_id=1/type=decisions/date=2020-01-01/part-0.parquet", ExportType.DECISIONS
        )
    with pytest.raises(ValueError):
        day_prefix(root, ExportType.EVENTS, "2024-13-01")


@pytest.mark.parametrize(
    "path",
    ["s3://optimizely-events-data/v1/account_id=123", "s3://optimizely-events-data/v1/account_id=123/"],
)
def test_s3_path_with_or_without_trailing_slash(path):
    assert split_s3_path(path) == ("optimizely-events-data", "v1/account_id=123")
    assert account_id_from_s3_path(path) == "123"


def test_bigquery_fields_nest_lists_and_maps():
    fields = {f["name"]: f for f in bigquery_source_fields(ExportType.EVENTS)}
    assert fields["experiments"]["mode"] == "REPEATED" and fields["experiments"]["type"] == "RECORD"
    assert [c["name"] for c in fields["tags"]["fields"]] == ["key", "value"] and fields["tags"][
        "mode"
    ] == "REPEATED"
    assert fields["revenue"]["type"] == "INTEGER" and fields["value"]["type"] == "FLOAT"
    assert json.dumps(fields["timestamp"]) == '{"name": "timestamp", "type": "TIMESTAMP", "mode": "NULLABLE"}'


def test_schema_drift_names_added_missing_and_retyped_columns():
    import pyarrow as pa

    drifted = DECISIONS_SCHEMA.remove(DECISIONS_SCHEMA.get_field_index("referer"))
    drifted = drifted.append(pa.field("new_col", pa.string()))
    drifted = drifted.set(drifted.get_field_index("is_holdback"), pa.field("is_holdback", pa.string()))
    assert schema_drift(DECISIONS_SCHEMA, drifted) == {
        "added": ["new_col"],
        "missing": ["referer"],
        "retyped": ["is_holdback"],
        "widened": [],
    }
    assert schema_drift(DECISIONS_SCHEMA, DECISIONS_SCHEMA) == {
        "added": [],
        "missing": [],
        "retyped": [],
        "widened": [],
    }


def test_local_staging_keeps_every_name_inside_its_root(tmp_path):
    from optimizely_assets.resources.staging import LocalStaging

    staging = LocalStaging(root_dir=str(tmp_path / "stage"))
    root = (tmp_path / "stage" / "optimizely").resolve()
    assert staging.uri("type=events/date=2024-01-01/ab.parquet") == str(
        root / "type=events/date=2024-01-01/ab.parquet"
    )
    for bad in ("../x.parquet", "type=events/../../x.parquet", "/etc/passwd"):
        with pytest.raises(ValueError, match="outside the staging directory"):
            staging.uri(bad)
