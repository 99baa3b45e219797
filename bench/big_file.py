"""Write one decisions day whose only file is ~N GB in a single row group.

    python -m bench.big_file <bucket_root> <YYYY-MM-DD> <gigabytes>   (prints the file path)

Incompressible 1,000-character user agents carry the bytes; everything else is schema-exact.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import ExportSpec, partition_table
from optimizely_assets.e3.layout import ExportType, account_prefix, day_prefix, success_key

UA_CHARS = 1_000


def random_hex_strings(rows: int, rng: np.random.Generator) -> pa.Array:
    raw = np.frombuffer(rng.bytes(rows * UA_CHARS // 2), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty(rows * UA_CHARS, dtype=np.uint8)
    chars[0::2], chars[1::2] = digits[raw >> 4], digits[raw & 15]
    offsets = np.arange(0, rows * UA_CHARS + 1, UA_CHARS, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(chars))


def main(root: str, day: str, gigabytes: str) -> None:
    d = dt.date.fromisoformat(day)
    rows = int(float(gigabytes) * 1e9 / (UA_CHARS + 60))
    spec = ExportSpec()
    table = partition_table(ExportType.DECISIONS, "18786493700", rows, d, spec)
    table = table.set_column(
        table.column_names.index("user_agent"),
        "user_agent",
        random_hex_strings(rows, np.random.default_rng(1)),
    )
    prefix = day_prefix(account_prefix(spec.account_id), ExportType.DECISIONS, d)
    path = Path(root) / f"{prefix}experiment=18786493700/part-00000-big.c000.snappy.parquet"
    write_parquet(table, path)  # one row group: row_group_size = all rows
    for export_type in ExportType:  # the events day is complete and empty
        marker = Path(root) / success_key(account_prefix(spec.account_id), export_type, d)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_bytes(b"")
    print(path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
