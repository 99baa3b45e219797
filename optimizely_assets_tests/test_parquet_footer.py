"""Footers read from one ranged read of the file's end: large footers, lying lengths, real files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.e3.parquet_footer import TAIL_BYTES, ParquetFileError, read_footer


def _reader(data: bytes) -> tuple[list[tuple[int, int]], object]:
    calls: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start : end + 1]

    return calls, fetch


def test_a_footer_larger_than_the_tail_read_takes_exactly_one_more_read(tmp_path):
    # 400 row groups of a string column with statistics: a footer far beyond TAIL_BYTES.
    path = tmp_path / "many_row_groups.parquet"
    table = pa.table({"experiment_id": ["7"] * 4_000, "uuid": [f"u{i:06d}" for i in range(4_000)]})
    pq.write_table(table, path, row_group_size=10)
    data = path.read_bytes()
    footer_len = int.from_bytes(data[-8:-4], "little")
    assert footer_len > TAIL_BYTES
    calls, fetch = _reader(data)
    footer = read_footer(len(data), fetch, "s3://b/many_row_groups.parquet", ("experiment_id", "uuid"))
    assert (footer.rows, footer.row_groups) == (4_000, 400)
    assert footer.column_values["experiment_id"] == "7"
    assert len(calls) == 2 and calls[1] == (len(data) - footer_len - 8, len(data) - 1)


def test_a_small_footer_is_one_read_of_the_end_only(tmp_path):
    path = tmp_path / "spark.parquet"
    write_parquet(pa.table({"uuid": [f"u{i}" for i in range(200_000)]}), path)
    data = path.read_bytes()
    assert len(data) > 4 * TAIL_BYTES
    calls, fetch = _reader(data)
    assert read_footer(len(data), fetch, "f").rows == 200_000
    assert calls == [(len(data) - TAIL_BYTES, len(data) - 1)]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: d[:8], "8 bytes is too short"),
        (lambda d: d[:-4] + b"PARX", "no PAR1 at its end"),
        # A footer length larger than the file: a truncated upload or a corrupted length field.
        (lambda d: d[:-8] + (len(d) * 2).to_bytes(4, "little") + b"PAR1", "its footer claims"),
        # The right length over garbage metadata: pyarrow's own error, still naming the file.
        (lambda d: d[:-200] + bytes(192) + d[-8:], "is not a readable Parquet file"),
    ],
)
def test_a_damaged_end_fails_naming_the_file(tmp_path, damage, says):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"uuid": [f"u{i}" for i in range(1_000)]}), path)
    data = damage(path.read_bytes())
    _, fetch = _reader(data)
    with pytest.raises(ParquetFileError, match=says) as err:
        read_footer(len(data), fetch, "s3://optimizely-events-data/v1/x/part-0.parquet")
    assert "s3://optimizely-events-data/v1/x/part-0.parquet" in str(err.value)


def test_a_short_read_is_an_error_not_a_misparse(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"uuid": ["a"]}), path)
    data = path.read_bytes()
    with pytest.raises(ParquetFileError, match="read 10 of the last"):
        read_footer(len(data), lambda s, e: data[s : e + 1][:10], "f.parquet")
