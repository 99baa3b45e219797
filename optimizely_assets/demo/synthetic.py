"""A schema-exact synthetic Enriched Events Export, written in the real key layout.

What it imitates (reference §1-5): one ``part-00000-<job uuid>.c000.snappy.parquet`` per experiment /
event partition, one Spark job uuid per (type, date), the Spark schema in the footer, a date-level
``_SUCCESS``, percent-encoded event directories (and ``event=NULL``), late events (client ``timestamp``
days before ``process_timestamp``), and duplicate uuids across files of a day and across days.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from optimizely_assets.demo import experiments as catalog
from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.e3.layout import (
    ExportType,
    account_prefix,
    day_prefix,
    encode_partition_value,
    success_key,
)
from optimizely_assets.e3.schemas import SCHEMAS

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
    flavor: str = "pyarrow"  # see FLAVORS: how the files' timestamps are written
    files_per_day: int = (
        0  # about this many files per type and day (Spark's part-NNNNN); 0: one per partition
    )


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
    return catalog.experiment_ids(spec.experiments)


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
        carry: list[tuple[str, int]] = []  # (uuid, visitor) re-sent on the next day
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
    resent: list[tuple[str, int]],
) -> tuple[WrittenDay, list[tuple[str, int]]]:
    n = spec.decisions_per_day if export_type is ExportType.DECISIONS else spec.events_per_day
    keys = experiment_ids(spec) if export_type is ExportType.DECISIONS else list(spec.event_names)
    raw = rng.bytes(16 * n)
    uuids = np.array([str(uuidlib.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)])
    # Some uuids appear twice within the day, in another partition's file.
    n_dup = int(n * spec.duplicate_rate)
    if n_dup:
        uuids[rng.choice(n, n_dup, replace=False)] = rng.choice(uuids, n_dup)
    # Some uuids of the previous day are received again today (with their visitor: one event).
    k = min(len(resent), n)
    resent_at = rng.choice(n, k, replace=False) if k else np.array([], dtype=int)
    uuids[resent_at] = [u for u, _ in resent[:k]]
    next_at = rng.choice(n, min(spec.cross_day_duplicates, n), replace=False)

    day_start_ms = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    process = day_start_ms + rng.integers(0, 86_400_000, size=n)
    lag = rng.integers(2_000, 90_000, size=n)
    late = rng.random(n) < spec.late_rate
    lag[late] = rng.integers(86_400_000, 3 * 86_400_000, size=int(late.sum()))
    client_ts = process - lag
    partition = rng.integers(0, len(keys), size=n)
    # One visitor pool for both types, so that conversions can be attributed to exposures.
    pool = max(spec.decisions_per_day // 3, 1)
    visitor_nums = rng.integers(0, pool, size=n)
    purchases = partition == keys.index("purchase") if "purchase" in keys else None
    if export_type is ExportType.EVENTS:
        catalog.shape_events(spec.experiments, pool, visitor_nums, purchases, rng)
    # A uuid is one event: its copies, in the day or re-sent, have its visitor.
    visitor_nums[resent_at] = [v for _, v in resent[:k]]
    _, first, inverse = np.unique(uuids, return_index=True, return_inverse=True)
    visitor_nums = visitor_nums[first[inverse]]
    next_resent = list(zip(uuids[next_at].tolist(), visitor_nums[next_at].tolist(), strict=True))
    visitors = np.array([f"user_{v}" for v in visitor_nums])

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
        parts = max(1, round(spec.files_per_day / len(keys))) if spec.files_per_day else 1
        bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            rel = (
                f"{prefix}{export_type.partition_column}={encode_partition_value(key_value)}/"
                f"part-{i:05d}-{job}.c000.snappy.parquet"
            )
            write_parquet(table.slice(lo, hi - lo), root / rel, flavor=spec.flavor)
            wd.files[rel] = int(hi - lo)
        wd.unique_uuids.update(table.column("uuid").to_pylist())
    return wd, next_resent


def _const(value: str | None, n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    """A column of one repeated value, built without a Python list per row."""
    if value is None:
        return pa.nulls(n, type_)
    return pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([value], type_)).cast(type_)


def _pick(choices: list[str], idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(idx.astype(np.int32), pa.array(choices)).cast(pa.string())


def _lists(offsets: np.ndarray, values: pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


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
    """Columns are built vectorised (dictionary-decoded, offsets + flat children): ~1M rows/s."""
    n = len(uuids)
    schema = SCHEMAS[export_type]
    # Three attributes per row, as Optimizely's samples carry: bot filtering flag, metadata, browser.
    browser = rng.integers(0, 4, n)
    attr_idx = np.empty(3 * n, dtype=np.int32)
    attr_idx[0::3], attr_idx[1::3], attr_idx[2::3] = 0, 1, 2 + browser
    attr_rows = [
        ("$opt_bot_filtering", "$opt_bot_filtering", "custom", "false"),
        (None, "attribution/captured", "metadata", "true"),
        *[("18802134986", "browser", "custom", b) for b in ("chrome", "firefox", "safari", "edge")],
    ]
    attr_struct = pa.StructArray.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.array(attr_idx), pa.array([r[i] for r in attr_rows])).cast(
                pa.string()
            )
            for i in range(4)
        ],
        names=["id", "name", "type", "value"],
    )
    cols: dict[str, pa.Array] = {
        "uuid": pa.array(uuids, pa.string()),
        "timestamp": pa.array(client_ts, pa.timestamp("ms", tz="UTC")),
        "process_timestamp": pa.array(process, pa.timestamp("ms", tz="UTC")),
        "visitor_id": pa.array(visitors, pa.string()),
        "session_id": _const(None, n),  # not generated since 2023-10-09
        "account_id": _const(spec.account_id, n),
        "attributes": _lists(np.arange(0, 3 * n + 1, 3), attr_struct),
        "user_ip": _pick([f"75.111.{i}.0" for i in range(250)], rng.integers(0, 250, n)),
        "user_agent": _const("python-requests/2.31.0", n),
        "referer": _const(None, n),
        "revision": _pick([str(r) for r in range(80, 120)], rng.integers(0, 40, n)),
        "client_engine": _const("python-sdk", n),
        "client_version": _const("5.0.1", n),
    }
    if export_type is ExportType.DECISIONS:
        exp = int(key_value)
        cols |= {
            "campaign_id": _const(str(exp - 1), n),
            "experiment_id": _const(key_value, n),
            # Bucketed per visitor, as Optimizely does: a visitor keeps its variation.
            "variation_id": _pick(
                [str(exp + 1), str(exp + 2)],
                catalog.treated(exp, catalog.visitor_nums(visitors)).astype(int),
            ),
            "is_holdback": pa.array(rng.random(n) < 0.05),
        }
    else:
        ids = experiment_ids(spec)
        counts = rng.integers(0, 3, n)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        picked = rng.integers(0, len(ids), int(offsets[-1]))
        experiments = pa.StructArray.from_arrays(
            [
                _pick([str(int(e) - 1) for e in ids], picked),
                _pick(ids, picked),
                _pick([str(int(e) + 1) for e in ids], picked),
                pa.array(np.zeros(len(picked), dtype=bool)),
            ],
            names=["campaign_id", "experiment_id", "variation_id", "is_holdback"],
        )
        purchase = key_value == "purchase"
        revenue = rng.integers(100, 20_000, n) if purchase else None
        if purchase:
            keys = np.empty(2 * n, dtype=object)
            keys[0::2], keys[1::2] = "category", "revenue"
            items = np.empty(2 * n, dtype=object)
            items[0::2], items[1::2] = "electronics", revenue.astype(str)
            tags = pa.MapArray.from_arrays(
                pa.array(np.arange(0, 2 * n + 1, 2), pa.int32()),
                pa.array(keys, pa.string()),
                pa.array(items, pa.string()),
            )
        else:
            tags = pa.MapArray.from_arrays(
                pa.array(np.zeros(n + 1), pa.int32()), pa.array([], pa.string()), pa.array([], pa.string())
            )
        cols |= {
            "experiments": _lists(offsets, experiments),
            "entity_id": _const(str(15_762_370_046 + len(key_value)), n),
            "event_type": _const(None, n),
            "event_name": _const(None if key_value == "NULL" else key_value, n),
            "revenue": pa.array(revenue, pa.int64()) if purchase else pa.nulls(n, pa.int64()),
            "value": pa.nulls(n, pa.float64()),
            "quantity": pa.nulls(n, pa.int64()),
            "tags": tags,
        }
    return pa.table([cols[f.name].cast(f.type) for f in schema], schema=schema)


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
