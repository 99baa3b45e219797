"""Rewrite one staged Parquet file without some visitors' rows, a row group at a time.

First pass: the ``visitor_id`` column only, row group by row group; its distinct values are
matched against the ids to drop (given clear by a request, or as salted hashes for later loads).
A file without them is left alone, byte for byte. Otherwise the second pass writes every row group
without those rows, in the file's own schema (timestamps kept at microseconds, which both
warehouses load), and counts what it dropped per key column value (experiment or event name), so
the footer check can still reconcile exactly: raw rows == footer rows − suppressed rows.
Memory: one row group at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from optimizely_assets.privacy.visitors import visitor_hash


@dataclass(frozen=True)
class Scrubbed:
    rows_removed: int
    rows_left: int
    removed_by_key: dict[str | None, int] = field(default_factory=dict)


def matcher(ids: set[str] | None = None, hashes: set[str] | None = None, salt: str = "") -> Callable:
    """A function of one column's distinct values -> those to drop."""

    def match(values: list[str | None]) -> list[str]:
        out = [v for v in values if v is not None and ids and v in ids]
        if hashes:
            out += [v for v in values if v is not None and visitor_hash(salt, v) in hashes]
        return out

    return match


def _matched(reader: pq.ParquetFile, match: Callable) -> set[str]:
    drop: set[str] = set()
    for i in range(reader.num_row_groups):
        column = reader.read_row_group(i, columns=["visitor_id"]).column(0)
        drop.update(match(pc.unique(column).to_pylist()))
    return drop


def holds(src: Path, match: Callable) -> bool:
    """Whether the file has a row of the matched visitors (the first pass alone: a dry run)."""
    reader = pq.ParquetFile(src)
    return "visitor_id" in reader.schema_arrow.names and bool(_matched(reader, match))


def scrub_file(src: Path, dst: Path, match: Callable, key_column: str) -> Scrubbed | None:
    """``dst`` = ``src`` without the matched visitors' rows; None (and no ``dst``) if it has none."""
    reader = pq.ParquetFile(src)
    if "visitor_id" not in reader.schema_arrow.names:
        return None
    drop = _matched(reader, match)
    if not drop:
        return None
    dropped = pa.array(sorted(drop), pa.string())
    removed = left = 0
    by_key: dict[str | None, int] = {}
    schema = reader.schema_arrow
    with pq.ParquetWriter(
        dst, schema, compression="snappy", coerce_timestamps="us", allow_truncated_timestamps=True
    ) as writer:
        for i in range(reader.num_row_groups):
            group = reader.read_row_group(i)
            gone = pc.fill_null(pc.is_in(group.column("visitor_id"), value_set=dropped), False)
            if key_column in group.schema.names:
                for d in pc.value_counts(group.filter(gone).column(key_column)).to_pylist():
                    by_key[d["values"]] = by_key.get(d["values"], 0) + d["counts"]
            kept = group.filter(pc.invert(gone))
            removed += group.num_rows - kept.num_rows
            left += kept.num_rows
            if kept.num_rows:
                writer.write_table(kept)
    return Scrubbed(removed, left, by_key)
