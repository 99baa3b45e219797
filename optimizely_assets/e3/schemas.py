"""Exact E3 Parquet schemas (reference §2.1-2.3) and their warehouse mappings.

Everything here is pure: Arrow schemas for writing/validating files, and the
BigQuery / DuckDB column definitions derived from them, so the three never drift.
"""

from __future__ import annotations

import json

import pyarrow as pa

from optimizely_assets.e3.layout import ExportType

TS = pa.timestamp("ms", tz="UTC")

ATTRIBUTE = pa.struct(
    [("id", pa.string()), ("name", pa.string()), ("type", pa.string()), ("value", pa.string())]
)
EXPERIMENT_REF = pa.struct(
    [
        ("campaign_id", pa.string()),
        ("experiment_id", pa.string()),
        ("variation_id", pa.string()),
        ("is_holdback", pa.bool_()),
    ]
)

DECISIONS_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("timestamp", TS),
        ("process_timestamp", TS),
        ("visitor_id", pa.string()),
        ("session_id", pa.string()),
        ("account_id", pa.string()),
        ("campaign_id", pa.string()),
        ("experiment_id", pa.string()),
        ("variation_id", pa.string()),
        ("attributes", pa.list_(ATTRIBUTE)),
        ("user_ip", pa.string()),
        ("user_agent", pa.string()),
        ("referer", pa.string()),
        ("is_holdback", pa.bool_()),
        ("revision", pa.string()),
        ("client_engine", pa.string()),
        ("client_version", pa.string()),
    ]
)

EVENTS_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("timestamp", TS),
        ("process_timestamp", TS),
        ("visitor_id", pa.string()),
        ("session_id", pa.string()),
        ("account_id", pa.string()),
        ("experiments", pa.list_(EXPERIMENT_REF)),
        ("entity_id", pa.string()),
        ("attributes", pa.list_(ATTRIBUTE)),
        ("user_ip", pa.string()),
        ("user_agent", pa.string()),
        ("referer", pa.string()),
        ("event_type", pa.string()),
        ("event_name", pa.string()),
        ("revenue", pa.int64()),
        ("value", pa.float64()),
        ("quantity", pa.int64()),
        ("tags", pa.map_(pa.string(), pa.string())),
        ("revision", pa.string()),
        ("client_engine", pa.string()),
        ("client_version", pa.string()),
    ]
)

SCHEMAS: dict[ExportType, pa.Schema] = {
    ExportType.DECISIONS: DECISIONS_SCHEMA,
    ExportType.EVENTS: EVENTS_SCHEMA,
}

# Spark writes its own schema into the footer under this key; the real files carry it.
SPARK_METADATA_KEY = b"org.apache.spark.sql.parquet.row.metadata"


def spark_schema_json(schema: pa.Schema) -> str:
    """The Spark StructType JSON that parquet-mr stores in E3 footers."""

    def spark_type(t: pa.DataType) -> object:
        if pa.types.is_string(t):
            return "string"
        if pa.types.is_timestamp(t):
            return "timestamp"
        if pa.types.is_boolean(t):
            return "boolean"
        if pa.types.is_int64(t):
            return "long"
        if pa.types.is_float64(t):
            return "double"
        if pa.types.is_map(t):
            return {
                "type": "map",
                "keyType": spark_type(t.key_type),
                "valueType": spark_type(t.item_type),
                "valueContainsNull": True,
            }
        if pa.types.is_list(t):
            return {"type": "array", "elementType": spark_type(t.value_type), "containsNull": True}
        if pa.types.is_struct(t):
            return {"type": "struct", "fields": [field(f) for f in t]}
        raise TypeError(f"no Spark type for {t}")

    def field(f: pa.Field) -> dict:
        return {"name": f.name, "type": spark_type(f.type), "nullable": True, "metadata": {}}

    return json.dumps({"type": "struct", "fields": [field(f) for f in schema]}, separators=(",", ":"))


# --- warehouse column types -------------------------------------------------------------


def bigquery_field(f: pa.Field) -> dict:
    """BigQuery API representation of one Arrow field (nested as RECORD / REPEATED)."""
    t = f.type
    if pa.types.is_list(t):
        inner = bigquery_field(pa.field(f.name, t.value_type))
        return {**inner, "mode": "REPEATED"}
    if pa.types.is_map(t):
        # map_target_type=ARRAY_OF_STRUCT gives ARRAY<STRUCT<key, value>>.
        return {
            "name": f.name,
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "key", "type": "STRING", "mode": "NULLABLE"},
                {"name": "value", "type": "STRING", "mode": "NULLABLE"},
            ],
        }
    if pa.types.is_struct(t):
        return {
            "name": f.name,
            "type": "RECORD",
            "mode": "NULLABLE",
            "fields": [bigquery_field(c) for c in t],
        }
    scalar = {
        pa.string(): "STRING",
        TS: "TIMESTAMP",
        pa.bool_(): "BOOLEAN",
        pa.int64(): "INTEGER",
        pa.float64(): "FLOAT",
    }
    return {"name": f.name, "type": scalar[t], "mode": "NULLABLE"}


def bigquery_source_fields(export_type: ExportType) -> list[dict]:
    return [bigquery_field(f) for f in SCHEMAS[export_type]]


def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{c.name}" {duckdb_type(c.type)}' for c in t) + ")"
    raise TypeError(f"no DuckDB type for {t}")


def source_columns(export_type: ExportType) -> list[str]:
    return SCHEMAS[export_type].names


def schema_drift(expected: pa.Schema, actual: pa.Schema) -> dict[str, list[str]]:
    """Columns added, missing or retyped in ``actual`` relative to ``expected``, and the known
    columns ``actual`` widens with fields added inside them (``widened``; see ``nested_added``)."""
    exp = {f.name: f.type for f in expected}
    act = {f.name: f.type for f in actual}
    common = sorted(set(exp) & set(act))
    retyped = [n for n in common if not _compatible(exp[n], act[n])]
    return {
        "added": sorted(set(act) - set(exp)),
        "missing": sorted(set(exp) - set(act)),
        "retyped": retyped,
        "widened": [n for n in common if n not in retyped and nested_added(exp[n], act[n])],
    }


NestedPath = tuple[str, ...]  # ("attributes", "element", "source"): "element" is a list's item


def nested_added(
    have: pa.DataType, new: pa.DataType, path: NestedPath = ()
) -> list[tuple[NestedPath, pa.DataType]]:
    """Fields ``new`` has inside structs (in lists and maps too, at any depth) that ``have`` lacks."""
    if pa.types.is_struct(have) and pa.types.is_struct(new):
        known = {f.name: f.type for f in have}
        out: list[tuple[NestedPath, pa.DataType]] = []
        for f in new:
            if f.name not in known:
                out.append(((*path, f.name), f.type))
            else:
                out += nested_added(known[f.name], f.type, (*path, f.name))
        return out
    if pa.types.is_map(have) and pa.types.is_map(new):
        return nested_added(have.item_type, new.item_type, (*path, "value"))
    if pa.types.is_list(have) and pa.types.is_list(new):
        return nested_added(have.value_type, new.value_type, (*path, "element"))
    return []


def show_path(path: NestedPath) -> str:
    """``attributes[].source``, as a user reads it."""
    out = path[0]
    for part in path[1:]:
        out += "[]" if part == "element" else ("{}" if part == "value" else f".{part}")
    return out


def _compatible(expected: pa.DataType, actual: pa.DataType) -> bool:
    if expected.equals(actual):
        return True
    # Readers may report ms timestamps as us/ns, or lists with another element name.
    if pa.types.is_timestamp(expected) and pa.types.is_timestamp(actual):
        return True
    if pa.types.is_list(expected) and pa.types.is_list(actual):
        return _compatible(expected.value_type, actual.value_type)
    if pa.types.is_struct(expected) and pa.types.is_struct(actual):
        a = {f.name: f.type for f in actual}
        return all(f.name in a and _compatible(f.type, a[f.name]) for f in expected)
    if pa.types.is_map(expected) and pa.types.is_map(actual):
        return _compatible(expected.item_type, actual.item_type)
    return False
