"""A schema-exact synthetic Enriched Events Export, written in the real key layout.

What it imitates (reference §1-5): one ``part-00000-<job uuid>.c000.snappy.parquet`` per
experiment / event partition, one Spark job uuid per (type, date), the Spark schema in the
footer, a date-level ``_SUCCESS``, percent-encoded event directories (and ``event=NULL``),
late events (client ``timestamp`` days before ``process_timestamp``), and duplicate uuids
both across files of a day and across days.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_assets.layout import (
    ExportType,
    account_prefix,
    day_prefix,
    encode_partition_value,
    success_key,
)
from optimizely_assets.schemas import SCHEMAS, SPARK_METADATA_KEY, spark_schema_json

DEFAULT_EVENT_NAMES = (
    "add_to_cart",
    "purchase",
    "detail_page_view",
    "homepage_view",
    "Main_Nav_javascript:void(0);",
    "search query/results",
    "checkout: step 2",
    "NULL",
)


@dataclass(frozen=True)
class ExportSpec:
    account_id: str = "5935064"
    experiments: int = 12
    event_names: tuple[str, ...] = DEFAULT_EVENT_NAMES
    decisions_per_day: int = 4_000
    events_per_day: int = 6_000
    duplicate_rate: float = 0.02  # share of a day's rows re-sent in another file of the day
    cross_day_duplicates: int = 25  # uuids of day D re-sent on day D+1
    late_rate: float = 0.05  # share of rows whose client timestamp is 1-3 days old
    seed: int = 7


@dataclass
class WrittenDay:
    export_type: ExportType
    day: dt.date
    files: dict[str, int] = field(default_factory=dict)  # relative key -> rows
    unique_uuids: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return sum(self.files.values())


def experiment_ids(spec: ExportSpec) -> list[str]:
    return [str(18_786_493_700 + 13 * i) for i in range(spec.experiments)]


def write_export(
    root: Path,
    days: Iterable[dt.date],
    spec: ExportSpec = ExportSpec(),
    types: Iterable[ExportType] = tuple(ExportType),
    success: bool = True,
) -> list[WrittenDay]:
    """Write the export for ``days`` under ``root`` (a directory standing for the bucket)."""
    days = sorted(days)
    written: list[WrittenDay] = []
    for export_type in types:
        carry: list[str] = []  # uuids re-sent on the next day
        for i, day in enumerate(days):
            rng = np.random.default_rng([spec.seed, i, 0 if export_type is ExportType.DECISIONS else 1])
            wd, carry = _write_day(root, export_type, day, spec, rng, carry)
            if success:
                marker = root / success_key(account_prefix(spec.account_id), export_type, day)
                marker.write_bytes(b"")
            written.append(wd)
    return written


def _write_day(
    root: Path,
    export_type: ExportType,
    day: dt.date,
    spec: ExportSpec,
    rng: np.random.Generator,
    resent: list[str],
) -> tuple[WrittenDay, list[str]]:
    n = spec.decisions_per_day if export_type is ExportType.DECISIONS else spec.events_per_day
    keys = experiment_ids(spec) if export_type is ExportType.DECISIONS else list(spec.event_names)
    raw = rng.bytes(16 * n)
    uuids = np.array([str(uuidlib.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)])
    # Some uuids appear twice within the day, in another partition's file.
    n_dup = int(n * spec.duplicate_rate)
    if n_dup:
        uuids[rng.choice(n, n_dup, replace=False)] = rng.choice(uuids, n_dup)
    # Some uuids of the previous day are received again today.
    if resent:
        k = min(len(resent), n)
        uuids[rng.choice(n, k, replace=False)] = resent[:k]
    next_resent = list(rng.choice(uuids, min(spec.cross_day_duplicates, n), replace=False))

    day_start_ms = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    process = day_start_ms + rng.integers(0, 86_400_000, size=n)
    lag = rng.integers(2_000, 90_000, size=n)
    late = rng.random(n) < spec.late_rate
    lag[late] = rng.integers(86_400_000, 3 * 86_400_000, size=int(late.sum()))
    client_ts = process - lag
    partition = rng.integers(0, len(keys), size=n)
    visitors = np.array([f"user_{v}" for v in rng.integers(0, max(n // 3, 1), size=n)])

    job = uuidlib.UUID(bytes=rng.bytes(16), version=4)
    wd = WrittenDay(export_type, day)
    prefix = day_prefix(account_prefix(spec.account_id), export_type, day)
    for p, key_value in enumerate(keys):
        idx = np.flatnonzero(partition == p)
        if idx.size == 0:
            continue
        table = _table(
            export_type, spec, key_value, uuids[idx], client_ts[idx], process[idx], visitors[idx], rng
        )
        rel = (
            f"{prefix}{export_type.partition_column}={encode_partition_value(key_value)}/"
            f"part-00000-{job}.c000.snappy.parquet"
        )
        write_parquet(table, root / rel)
        wd.files[rel] = table.num_rows
        wd.unique_uuids.update(table.column("uuid").to_pylist())
    return wd, next_resent


def write_parquet(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    """Write like parquet-mr: snappy, format 1.0 types, Spark schema in the footer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({SPARK_METADATA_KEY: spark_schema_json(table.schema).encode()})
    pq.write_table(
        table,
        path,
        compression="snappy",
        row_group_size=row_group_size or max(table.num_rows, 1),
        use_compliant_nested_type=True,
        coerce_timestamps="ms",
        allow_truncated_timestamps=True,
    )


def _table(
    export_type: ExportType,
    spec: ExportSpec,
    key_value: str,
    uuids: np.ndarray,
    client_ts: np.ndarray,
    process: np.ndarray,
    visitors: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    n = len(uuids)
    schema = SCHEMAS[export_type]
    browsers = np.array(["chrome", "firefox", "safari", "edge"])
    attrs = [
        [
            {"id": "$opt_bot_filtering", "name": "$opt_bot_filtering", "type": "custom", "value": "false"},
            {"id": None, "name": "attribution/captured", "type": "metadata", "value": "true"},
            {"id": "18802134986", "name": "browser", "type": "custom", "value": str(b)},
        ]
        for b in rng.choice(browsers, n)
    ]
    common = {
        "uuid": uuids,
        "timestamp": pa.array(client_ts, pa.timestamp("ms", tz="UTC")),
        "process_timestamp": pa.array(process, pa.timestamp("ms", tz="UTC")),
        "visitor_id": visitors,
        "session_id": [None] * n,  # not generated since 2023-10-09
        "account_id": [spec.account_id] * n,
        "attributes": attrs,
        "user_ip": [f"75.111.{i % 250}.0" for i in range(n)],
        "user_agent": ["python-requests/2.31.0"] * n,
        "referer": [None] * n,
        "revision": [str(int(r)) for r in rng.integers(80, 120, n)],
        "client_engine": ["python-sdk"] * n,
        "client_version": ["5.0.1"] * n,
    }
    if export_type is ExportType.DECISIONS:
        exp = int(key_value)
        cols = {
            **common,
            "campaign_id": [str(exp - 1)] * n,
            "experiment_id": [key_value] * n,
            "variation_id": [str(exp + 1 + int(v)) for v in rng.integers(0, 2, n)],
            "is_holdback": rng.random(n) < 0.05,
        }
    else:
        ids = experiment_ids(spec)
        name = None if key_value == "NULL" else key_value
        revenue = rng.integers(100, 20_000, n) if key_value == "purchase" else None
        cols = {
            **common,
            "experiments": [
                [
                    {
                        "campaign_id": str(int(e) - 1),
                        "experiment_id": e,
                        "variation_id": str(int(e) + 1),
                        "is_holdback": False,
                    }
                    for e in rng.choice(ids, int(k), replace=False)
                ]
                for k in rng.integers(0, 3, n)
            ],
            "entity_id": [str(15_762_370_046 + len(key_value))] * n,
            "event_type": [None] * n,
            "event_name": [name] * n,
            "revenue": pa.array(revenue, pa.int64()) if revenue is not None else pa.nulls(n, pa.int64()),
            "value": pa.nulls(n, pa.float64()),
            "quantity": pa.nulls(n, pa.int64()),
            "tags": [
                [("category", "electronics"), ("revenue", str(int(revenue[i])))]
                if revenue is not None
                else []
                for i in range(n)
            ],
        }
    return pa.table(
        {
            f.name: pa.array(cols[f.name], f.type) if not isinstance(cols[f.name], pa.Array) else cols[f.name]
            for f in schema
        },
        schema=schema,
    )


def partition_table(
    export_type: ExportType,
    key_value: str,
    rows: int,
    day: dt.date,
    spec: ExportSpec = ExportSpec(),
    seed: int = 0,
) -> pa.Table:
    """One partition's file content: ``rows`` unique events received on ``day``."""
    rng = np.random.default_rng([spec.seed, seed])
    raw = rng.bytes(16 * rows)
    uuids = np.array([str(uuidlib.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * rows, 16)])
    start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    process = start + rng.integers(0, 86_400_000, size=rows)
    client = process - rng.integers(2_000, 86_000, size=rows)
    visitors = np.array([f"user_{v}" for v in rng.integers(0, max(rows // 3, 1), size=rows)])
    return _table(export_type, spec, key_value, uuids, client, process, visitors, rng)


def date_range(start: dt.date, days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(days)]
