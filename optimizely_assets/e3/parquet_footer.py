"""Read what a Parquet footer says without downloading the file body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq


class ParquetFileError(ValueError):
    """A source file is not usable Parquet; the message names the file."""


# The value of a column in a whole file, from its row-group statistics: UNKNOWN when the
# statistics are absent or the file holds more than one value.
UNKNOWN = object()


@dataclass(frozen=True)
class Footer:
    rows: int
    row_groups: int
    schema: pa.Schema
    column_values: dict[str, object]  # column -> its one value in the file (None = all NULL) or UNKNOWN


# One ranged read of the file's end holds the footer of nearly every file (E3's are a few KB);
# a larger footer costs exactly one more. Parsed from memory: no Python file callbacks, and on
# S3 one GET a file instead of pyarrow's two or three.
TAIL_BYTES = 64 * 1024
_MAGIC = b"PAR1"


def footer_bytes(size: int, fetch: Callable[[int, int], bytes], name: str) -> bytes:
    """The end of a Parquet file that holds its whole footer, via ``fetch(start, end_inclusive)``."""
    if size < 12:  # header magic, footer length, footer magic
        raise ParquetFileError(f"{name} is not a readable Parquet file: {size} bytes is too short")
    start = max(0, size - TAIL_BYTES)
    tail = fetch(start, size - 1)
    if len(tail) != size - start:
        raise ParquetFileError(
            f"{name} is not a readable Parquet file: read {len(tail)} of the last {size - start} bytes"
        )
    if tail[-4:] != _MAGIC:
        raise ParquetFileError(f"{name} is not a readable Parquet file: no {_MAGIC.decode()} at its end")
    needed = int.from_bytes(tail[-8:-4], "little") + 8
    if needed > size - 4:
        raise ParquetFileError(
            f"{name} is not a readable Parquet file: its footer claims {needed:,} of its {size:,} bytes"
        )
    if needed > len(tail):
        tail = fetch(size - needed, size - 1)
        if len(tail) != needed:
            raise ParquetFileError(
                f"{name} is not a readable Parquet file: read {len(tail)} of {needed} footer bytes"
            )
    return tail


def read_footer(
    size: int, fetch: Callable[[int, int], bytes], name: str, value_columns: tuple[str, ...] = ()
) -> Footer:
    """Row count, schema and the single value of ``value_columns`` of one Parquet file of ``size``
    bytes, read through ``fetch(start, end_inclusive) -> bytes`` without its body.

    ``name`` goes into any error.
    """
    tail = footer_bytes(size, fetch, name)
    try:
        meta = pq.ParquetFile(pa.BufferReader(tail)).metadata
        schema = meta.schema.to_arrow_schema()
        values = {c: _single_value(meta, c) for c in value_columns}
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise ParquetFileError(f"{name} is not a readable Parquet file: {exc}") from None
    return Footer(rows=meta.num_rows, row_groups=meta.num_row_groups, schema=schema, column_values=values)


def _single_value(meta: pq.FileMetaData, column: str) -> object:
    """The one value a flat column holds in every row, None if all rows are NULL, else UNKNOWN."""
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if column not in names:
        return UNKNOWN
    idx = names.index(column)
    seen: set[object] = set()
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if rg.num_rows == 0:
            continue
        stats = rg.column(idx).statistics
        if stats is None or not stats.has_null_count:
            return UNKNOWN
        if stats.null_count == rg.num_rows:
            seen.add(None)
        elif stats.null_count == 0 and stats.has_min_max and stats.min == stats.max:
            seen.add(stats.min)
        else:
            return UNKNOWN
    if len(seen) > 1:
        return UNKNOWN
    return next(iter(seen)) if seen else None
