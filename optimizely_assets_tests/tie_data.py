"""Two export days of events built to test which copy of a uuid wins, on both backends.

Day 1 holds copies that tie on the timestamps and differ only in a later scalar column, copies
that tie on every scalar before ``user_ip`` and differ only in a nested column, NULL and
far-off client timestamps, a NULL process_timestamp, and a row without uuid. Day 2, four
export days later, re-sends two of them with other timestamps. ``user_ip`` names each copy.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from optimizely_assets.demo.synthetic import partition_table
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.e3.schemas import EVENTS_SCHEMA

DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 1, 5)
UTC = dt.timezone.utc


LOWER = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
UPPER = LOWER.upper()
MIXED = "0f1E2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CASES_DAY1 = [
    LOWER,
    MIXED,
    "12345678-1234-1234-1234-123456789012",  # digits only: the lowercase tag
    "{" + LOWER + "}",
    LOWER.replace("-", ""),
    "\\x01" + LOWER[:15],  # a backslash escape is text, not a byte
    "événement-ü",
    "",
]


def plain_day(day: dt.date, rows: int) -> pa.Table:
    return partition_table(ExportType.EVENTS, "purchase", rows, day, seed=day.toordinal())


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), UTC)


def _copy(base: dict, **changes) -> dict:
    return {**base, **changes}


def days() -> dict[dt.date, pa.Table]:
    base = plain_day(DAY1, 1).to_pylist()[0]
    t0, t1 = _at(DAY1, 10), _at(DAY1, 11)
    attrs = base["attributes"]
    d1 = [
        # same timestamps; the copies differ only in user_ip: the smaller wins
        _copy(base, uuid="u-tie-scalar", timestamp=t0, process_timestamp=t1, user_ip="10.0.0.2"),
        _copy(base, uuid="u-tie-scalar", timestamp=t0, process_timestamp=t1, user_ip="10.0.0.1"),
        # same in every scalar before user_ip; attributes decide (value "a" < "z"), not user_ip
        _copy(
            base,
            uuid="u-tie-nested",
            timestamp=t0,
            process_timestamp=t1,
            user_ip="10.0.0.8",
            attributes=[*attrs[:-1], {**attrs[-1], "value": "z"}],
        ),
        _copy(
            base,
            uuid="u-tie-nested",
            timestamp=t0,
            process_timestamp=t1,
            user_ip="10.0.0.9",
            attributes=[*attrs[:-1], {**attrs[-1], "value": "a"}],
        ),
        # the copy received first wins, whatever its client timestamp
        _copy(
            base, uuid="u-first", timestamp=_at(DAY1, 1), process_timestamp=_at(DAY1, 20), user_ip="10.0.1.2"
        ),
        _copy(
            base, uuid="u-first", timestamp=_at(DAY1, 23), process_timestamp=_at(DAY1, 5), user_ip="10.0.1.1"
        ),
        # a NULL process_timestamp sorts last
        _copy(base, uuid="u-null-proc", timestamp=t0, process_timestamp=None, user_ip="10.0.2.2"),
        _copy(base, uuid="u-null-proc", timestamp=t0, process_timestamp=t1, user_ip="10.0.2.1"),
        # NULL and far-off client clocks still reach canonical
        _copy(base, uuid="u-null-ts", timestamp=None, process_timestamp=t1, user_ip="10.0.3.1"),
        _copy(
            base,
            uuid="u-1970",
            timestamp=dt.datetime(1970, 1, 1, tzinfo=UTC),
            process_timestamp=t1,
            user_ip="10.0.4.1",
        ),
        _copy(
            base,
            uuid="u-2099",
            timestamp=dt.datetime(2099, 12, 31, tzinfo=UTC),
            process_timestamp=t1,
            user_ip="10.0.5.1",
        ),
        # no uuid: cannot be deduplicated, stays out of canonical
        _copy(base, uuid=None, timestamp=t0, process_timestamp=t1, user_ip="10.0.6.1"),
        # case and shape: each a different uuid string, so each its own key (uuid_key.py)
        *(
            _copy(base, uuid=u, timestamp=t0, process_timestamp=t1, user_ip=f"10.0.7.{i}")
            for i, u in enumerate(CASES_DAY1, 1)
        ),
        _copy(base, uuid=LOWER, timestamp=t0, process_timestamp=t0, user_ip="10.0.7.0"),  # LOWER's winner
    ]
    d2 = [
        _copy(
            base, uuid="u-null-ts", timestamp=_at(DAY2, 3), process_timestamp=_at(DAY2, 4), user_ip="10.9.3.1"
        ),
        _copy(
            base, uuid="u-1970", timestamp=_at(DAY2, 3), process_timestamp=_at(DAY2, 4), user_ip="10.9.4.1"
        ),
        _copy(
            base, uuid="u-day2", timestamp=_at(DAY2, 3), process_timestamp=_at(DAY2, 4), user_ip="10.9.9.1"
        ),
        # LOWER and MIXED again (re-sends: not inserted); UPPER and LOWER + newline are other strings
        *(
            _copy(base, uuid=u, timestamp=_at(DAY2, 3), process_timestamp=_at(DAY2, 4), user_ip=f"10.9.7.{i}")
            for i, u in enumerate([LOWER, MIXED, UPPER, LOWER + "\n"], 1)
        ),
    ]
    return {
        DAY1: pa.Table.from_pylist(d1, schema=EVENTS_SCHEMA),
        DAY2: pa.Table.from_pylist(d2, schema=EVENTS_SCHEMA),
    }


EXPECTED_INSERTED = [7 + len(CASES_DAY1), 3]
EXPECTED_WINNERS = {
    "u-tie-scalar": "10.0.0.1",
    "u-tie-nested": "10.0.0.9",
    "u-first": "10.0.1.1",
    "u-null-proc": "10.0.2.1",
    "u-null-ts": "10.0.3.1",
    "u-1970": "10.0.4.1",
    "u-2099": "10.0.5.1",
    "u-day2": "10.9.9.1",
    **{u: f"10.0.7.{i}" for i, u in enumerate(CASES_DAY1, 1)},
    LOWER: "10.0.7.0",  # received first of LOWER's copies on day 1
    UPPER: "10.9.7.3",
    LOWER + "\n": "10.9.7.4",
}
