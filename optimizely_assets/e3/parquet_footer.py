"""Read what a Parquet footer says without downloading the file body."""

from __future__ import annotations

import io
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


class RangedReader(io.RawIOBase):
    """A seekable, read-only file over ``fetch(start, end_inclusive) -> bytes``.

    Parquet readers seek to the end for the footer, so a few small ranged GETs
    replace a full download.
    """

    def __init__(self, size: int, fetch: Callable[[int, int], bytes]) -> None:
        self._size = size
        self._fetch = fetch
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        end = min(self._pos + len(buffer), self._size) - 1
        data = self._fetch(self._pos, end)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        return self.read(self._size - self._pos)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        if size == 0 or self._pos >= self._size:
            return b""
        end = min(self._pos + size, self._size) - 1
        data = self._fetch(self._pos, end)
        self._pos += len(data)
        return data


def read_footer(fileobj, name: str, value_columns: tuple[str, ...] = ()) -> Footer:
    """Row count, schema and the single value of ``value_columns`` of one Parquet file.

    ``name`` goes into any error.
    """
    try:
        meta = pq.ParquetFile(fileobj).metadata
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
