"""Parquet written as Optimizely's Spark jobs write it (parquet-mr): the synthetic export's file writer."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_assets.e3.schemas import SPARK_METADATA_KEY, spark_schema_json

# How timestamps are written. "pyarrow": TIMESTAMP(MILLIS, UTC-adjusted). Spark's writers carry
# no UTC annotation: "spark-int96" (parquet-mr's default, INT96) or "spark-millis" (milliseconds
# without isAdjustedToUTC), both meaning UTC; a reader must be told so.
FLAVORS = ("pyarrow", "spark-int96", "spark-millis")


def write_parquet(
    table: pa.Table, path: Path, row_group_size: int | None = None, flavor: str = "pyarrow"
) -> None:
    """Write like parquet-mr: snappy, format 1.0 types, Spark schema in the footer."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}, got {flavor!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    spark_json = spark_schema_json(table.schema).encode()
    options: dict = {"coerce_timestamps": "ms", "allow_truncated_timestamps": True}
    if flavor == "spark-int96":
        options = {"use_deprecated_int96_timestamps": True}
    elif flavor == "spark-millis":
        naive = pa.schema(
            [f.with_type(pa.timestamp("ms")) if pa.types.is_timestamp(f.type) else f for f in table.schema]
        )
        table = table.cast(naive)
    table = table.replace_schema_metadata({SPARK_METADATA_KEY: spark_json})
    pq.write_table(
        table,
        path,
        compression="snappy",
        row_group_size=row_group_size or max(table.num_rows, 1),
        use_compliant_nested_type=True,
        **options,
    )
