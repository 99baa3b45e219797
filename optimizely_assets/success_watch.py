"""What the `_SUCCESS` sensor decides on each tick, as pure functions of what it observed.

A day is identified by (export type, date); its fingerprint is the marker's ETag and
LastModified plus, for days inside the re-check window, the (key, ETag) set of its files, so
a rewritten marker or a late file both start the day again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from optimizely_assets.layout import ExportType, day_prefix, is_data_file, success_key
from optimizely_assets.resources.source import ExportSource


@dataclass(frozen=True)
class DayRequest:
    export_type: ExportType
    day: dt.date
    fingerprint: str
    reason: str  # "new" | "changed"

    @property
    def run_key(self) -> str:
        return f"{self.export_type.value}:{self.day.isoformat()}:{self.fingerprint}"


def window(today: dt.date, lookback_days: int, last_partition: dt.date | None) -> list[dt.date]:
    """Days the tick looks at: the last ``lookback_days`` up to the last existing partition."""
    end = min(today, last_partition) if last_partition else today
    return [end - dt.timedelta(days=i) for i in range(lookback_days - 1, -1, -1)]


def fingerprint(marker_etag: str, marker_modified: dt.datetime, files: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256(f"{marker_etag}|{marker_modified.isoformat()}".encode())
    for key, etag in sorted(files):
        h.update(f"\n{key}|{etag}".encode())
    return h.hexdigest()[:16]


def observe(source: ExportSource, export_type: ExportType, day: dt.date) -> str | None:
    """The day's fingerprint, or None while it has no `_SUCCESS`. One HEAD, one LIST."""
    marker = source.head(success_key(source.root, export_type, day))
    if marker is None:
        return None
    files = [
        (o.key, o.etag)
        for o in source.list_objects(day_prefix(source.root, export_type, day))
        if is_data_file(o.key)
    ]
    return fingerprint(marker.etag, marker.last_modified, files)


def plan(
    cursor: dict[str, dict[str, str]],
    observed: dict[tuple[ExportType, dt.date], str | None],
) -> tuple[list[DayRequest], dict[str, dict[str, str]]]:
    """Requests for days whose fingerprint is new or changed, and the next cursor.

    The cursor keeps only the days just observed, so it stays the size of the window.
    """
    requests: list[DayRequest] = []
    nxt: dict[str, dict[str, str]] = {}
    for (export_type, day), fp in sorted(observed.items(), key=lambda kv: (kv[0][1], kv[0][0].value)):
        if fp is None:
            continue
        seen = cursor.get(export_type.value, {}).get(day.isoformat())
        if seen != fp:
            requests.append(DayRequest(export_type, day, fp, "new" if seen is None else "changed"))
        nxt.setdefault(export_type.value, {})[day.isoformat()] = fp
    return requests, nxt


def load_cursor(raw: str | None) -> dict[str, dict[str, str]]:
    return json.loads(raw) if raw else {}


def dump_cursor(cursor: dict[str, dict[str, str]]) -> str:
    return json.dumps(cursor, sort_keys=True, separators=(",", ":"))
