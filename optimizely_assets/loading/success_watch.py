"""What the `_SUCCESS` sensor decides on each tick, as pure functions of what it observed.

A day is identified by (export type, date); its fingerprint is the marker's ETag and
LastModified plus the (key, ETag) set of its files, so a rewritten marker or a late file both
start the day again. A high-water mark per type remembers how far every day was requested, so
days that completed during an outage are all requested once the sensor runs again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from optimizely_assets.e3.layout import ExportType, day_prefix, is_data_file, success_key
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


@dataclass(frozen=True)
class TypeCursor:
    """Per export type: every day up to ``hwm`` was requested (or reported missing), and the
    fingerprints of the days observed lately, so an unchanged day is not requested twice."""

    hwm: dt.date | None
    seen: dict[str, str]
    # days passed over without _SUCCESS: observed on every tick until it appears, or until the bound
    waiting: tuple[str, ...] = ()


def days_to_observe(
    cursor: TypeCursor, last: dt.date, first: dt.date, lookback_days: int, max_days_per_tick: int
) -> list[dt.date]:
    """The recent days up to the mark (late files, rewrites) and the next days after it."""
    hwm = cursor.hwm or last - dt.timedelta(days=lookback_days)  # a first tick: recent days only
    start = max(first, min(hwm, last) - dt.timedelta(days=lookback_days - 1))
    end = min(last, hwm + dt.timedelta(days=max_days_per_tick))
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return sorted({*days, *(dt.date.fromisoformat(d) for d in cursor.waiting)})


def plan_type(
    export_type: ExportType,
    cursor: TypeCursor,
    observed: dict[dt.date, str | None],
    last: dt.date,
    lookback_days: int,
    bound_days: int = 30,
) -> tuple[list[DayRequest], TypeCursor, list[dt.date], list[dt.date]]:
    """Requests for new, changed or late days, the next cursor, the days passed over as missing on
    this tick, and the days given up on (past ``bound_days`` without _SUCCESS).

    The mark advances over contiguous complete days. A day still without _SUCCESS once it is
    older than the re-check window while later days completed is passed over, so one missing day
    cannot hold back every later one, but it stays in the cursor and is observed on every tick:
    its marker, whenever it comes within the bound (the dedup horizon), starts it.
    """
    requests = []
    for day, fp in sorted(observed.items()):
        if fp is not None and cursor.seen.get(day.isoformat()) != fp:
            late = day.isoformat() in cursor.waiting
            reason = "late" if late else ("new" if day.isoformat() not in cursor.seen else "changed")
            requests.append(DayRequest(export_type, day, fp, reason))
    hwm = cursor.hwm or last - dt.timedelta(days=lookback_days)
    recent = last - dt.timedelta(days=lookback_days - 1)
    skipped = []
    for day in sorted(d for d in observed if d > hwm):
        if observed[day] is not None:
            hwm = day
        elif day < recent and any(fp is not None for d, fp in observed.items() if d > day):
            skipped.append(day)
            hwm = day
        else:
            break
    keep_from = min(hwm, last) - dt.timedelta(days=lookback_days)
    seen = {d.isoformat(): fp for d, fp in observed.items() if fp is not None and d > keep_from}
    seen.update({k: v for k, v in cursor.seen.items() if k > keep_from.isoformat() and k not in seen})
    oldest = last - dt.timedelta(days=bound_days)
    still = {d for d in cursor.waiting if observed.get(dt.date.fromisoformat(d)) is None} | {
        d.isoformat() for d in skipped
    }
    expired = sorted(dt.date.fromisoformat(d) for d in still if dt.date.fromisoformat(d) < oldest)
    waiting = tuple(sorted(d for d in still if dt.date.fromisoformat(d) >= oldest))
    return requests, TypeCursor(hwm, seen, waiting), skipped, expired


def load_cursor(raw: str | None) -> dict[ExportType, TypeCursor]:
    data = json.loads(raw) if raw else {}
    out = {}
    for t in ExportType:
        entry = data.get(t.value, {})
        if "seen" not in entry:  # the previous cursor held only {day: fingerprint}
            entry = {"hwm": max(entry) if entry else None, "seen": entry}
        hwm = dt.date.fromisoformat(entry["hwm"]) if entry.get("hwm") else None
        out[t] = TypeCursor(hwm, dict(entry["seen"]), tuple(entry.get("waiting", ())))
    return out


def dump_cursor(cursor: dict[ExportType, TypeCursor]) -> str:
    data = {
        t.value: {
            "hwm": c.hwm.isoformat() if c.hwm else None,
            "seen": dict(sorted(c.seen.items())),
            "waiting": list(c.waiting),
        }
        for t, c in cursor.items()
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
