"""One export day of canonical rows into Mixpanel: streamed, mapped, batched, sent, accounted for.

Rows come from the warehouse in Arrow record batches (DuckDB ``fetch_record_batch``; BigQuery
result pages), so memory holds one record batch and one request, never the day. Each row becomes
an event (mapping.py) or a dead letter with its reason; events go out in batches of at most 2,000
and 10 MB of JSON (import_api.py). What Mixpanel rejects joins the dead letters. The day is
accounted for: accepted + rejected == the canonical rows of the day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.mixpanel.import_api import (
    MAX_BYTES,
    MAX_EVENT_BYTES,
    MAX_EVENTS,
    MixpanelImport,
    Sent,
    encode,
)
from optimizely_assets.mixpanel.mapping import PLACEHOLDER_IDS, TypeMapping, insert_id, to_event
from optimizely_assets.warehouse import mixpanel_sql as sql
from optimizely_assets.warehouse.base import Warehouse

ROWS_PER_BATCH = 500
# What the scan holds: a re-run day's WAL, replayed into pinned memory, needed 15 MB before the
# checkpoint below; after it, only the blocks in flight.
STREAM_MEMORY = "16MB"


@dataclass
class DayFeed:
    rows: int = 0
    sent: int = 0
    json_bytes: int = 0  # uncompressed event JSON sent
    batches: int = 0
    result: Sent = field(default_factory=Sent)
    dead: list[tuple[str, str, str]] = field(default_factory=list)  # (uuid, $insert_id, reason)

    @property
    def rejected(self) -> int:
        return len(self.dead)


def stream(warehouse: Warehouse, text: str) -> Iterator[pa.RecordBatch]:
    """The query's rows as Arrow record batches, never all of them at once."""
    if warehouse.kind == "bigquery":
        job = warehouse.client.query(text, job_config=warehouse.query_config())  # type: ignore[attr-defined]
        yield from job.result(page_size=ROWS_PER_BATCH).to_arrow_iterable()
        return
    with warehouse.connect() as con:  # type: ignore[attr-defined]
        # Changes still in the WAL are replayed into pinned memory by the reader: write them out.
        con.execute("CHECKPOINT")
    with warehouse.connect(read_only=True) as con:  # type: ignore[attr-defined]
        # A scan in order needs no more: the buffer pool would otherwise keep up to the
        # warehouse's memory_limit of blocks already sent (the RSS grew with the day).
        con.execute(f"SET memory_limit = '{STREAM_MEMORY}'")
        con.execute("SET threads = 1")  # Python maps the rows far slower than one thread scans them
        reader = con.execute(text).fetch_record_batch(ROWS_PER_BATCH)
        yield from reader


def feed_day(batches: Iterator[pa.RecordBatch], mapping: TypeMapping, api: MixpanelImport) -> DayFeed:
    day = DayFeed()
    encoded: list[bytes] = []
    ids: list[str] = []
    uuid_of: dict[str, str] = {}
    size = 2

    def flush() -> None:
        nonlocal size
        if not encoded:
            return
        sent = api.send(encoded, ids)
        day.result.add(sent)
        day.sent += len(encoded)
        day.batches += 1
        day.dead.extend((uuid_of.get(iid, ""), iid, reason) for iid, reason in sent.rejected)
        encoded.clear()
        ids.clear()
        uuid_of.clear()
        size = 2

    for batch in batches:
        for row in batch.to_pylist():
            day.rows += 1
            uuid = str(row.get("uuid"))
            iid = insert_id(uuid)
            names = (row.get("_experiment_name"), row.get("_variation_name"))
            event = to_event(row, mapping, names)
            if isinstance(event, dict) and str(event["properties"]["distinct_id"]).lower() in PLACEHOLDER_IDS:
                event = "distinct_id is a placeholder Mixpanel rejects"
            data = encode(event) if isinstance(event, dict) else b""
            if isinstance(event, dict) and len(data) > MAX_EVENT_BYTES:
                event = f"event is {len(data):,} bytes of JSON, over Mixpanel's 1 MB"
            if isinstance(event, str):
                day.dead.append((uuid, iid, event))
                continue
            if len(encoded) == MAX_EVENTS or size + len(data) + 1 > MAX_BYTES:
                flush()
            encoded.append(data)
            day.json_bytes += len(data)
            ids.append(iid)
            uuid_of[iid] = uuid
            size += len(data) + 1
    flush()
    return day


def record_dead_letters(analysis, export_type: ExportType, day: dt.date, feed: DayFeed) -> str:
    """Replace the day's dead letters with this run's; returns the table's name."""
    name = analysis.warehouse.ref(sql.DEAD_LETTER)
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    analysis.execute([sql.create_dead_letter(name, analysis.bigquery)])
    statements = sql.replace_dead_letters(name, export_type, day, feed.dead, now, analysis.bigquery)
    analysis.execute([(sql.DEAD_LETTER, s) for s in statements])
    return name
