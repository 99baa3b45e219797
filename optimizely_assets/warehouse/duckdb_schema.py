"""The embedded tables' shape: fields Optimizely adds inside a column reach the table first.

DuckDB's ``INSERT … BY NAME`` drops a STRUCT field its table lacks, without a word.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from optimizely_assets.e3.schemas import duckdb_type, nested_added, show_path
from optimizely_assets.warehouse import duckdb_sql as sql


def widen(con: duckdb.DuckDBPyConnection, table: str, fields: list[pa.Field]) -> list[str]:
    """Add to ``table`` the fields ``fields`` have inside its columns; returns them as paths."""
    have = con.execute(f"SELECT * FROM {table} LIMIT 0").arrow().schema
    done: list[str] = []
    for f in fields:
        for path, type_ in nested_added(have.field(f.name).type, f.type, (f.name,)):
            con.execute(sql.add_nested(table, path, duckdb_type(type_)))
            done.append(show_path(path))
    return done
