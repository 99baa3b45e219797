"""Canonical's dedup key: ``uuid_key``, a short binary encoding of ``uuid`` that is exact.

The dedup window is probed for the day's uuids twice a day (the MERGE, and the checks that verify
it). BigQuery bills a STRING as 2 bytes plus its UTF-8 length: 38 bytes for a UUID's 36 characters.
The key holds the same uuid in 17: a tag byte, then

- ``\\x01`` + the 16 bytes of a lowercase UUID text (``8-4-4-4-12`` hex digits, ``[0-9a-f]``);
- ``\\x02`` + the 16 bytes of an uppercase one (at least one of ``A-F``; digits only is lowercase);
- ``\\x03`` + the UTF-8 bytes of any other string (mixed case, braces, no dashes, anything).

It is injective: the tag says how to read the rest, and within each tag the text is rebuilt
exactly (``uuid_text``), so two different uuid strings never share a key and a probe on keys
finds exactly what a probe on the strings finds. ``uuid`` keeps its text; only the probes and
their checks compare keys.
"""

from __future__ import annotations

import re

UUID_KEY = "uuid_key"
LOWER, UPPER, OTHER = b"\x01", b"\x02", b"\x03"

_HEX = "{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LOWER_PATTERN = "[0-9a-f]" + _HEX
UPPER_PATTERN = LOWER_PATTERN.replace("a-f", "A-F")


def uuid_key(text: str | None) -> bytes | None:
    """The key of one uuid text, as both backends' SQL computes it (tests compare them)."""
    if text is None:
        return None
    if re.fullmatch(LOWER_PATTERN, text):
        return LOWER + bytes.fromhex(text.replace("-", ""))
    if re.fullmatch(UPPER_PATTERN, text):
        return UPPER + bytes.fromhex(text.replace("-", ""))
    return OTHER + text.encode("utf-8")


def uuid_text(key: bytes) -> str:
    """The uuid a key was made from: the inverse that makes the encoding exact."""
    tag, rest = key[:1], key[1:]
    if tag == OTHER:
        return rest.decode("utf-8")
    if tag not in (LOWER, UPPER) or len(rest) != 16:
        raise ValueError(f"not a uuid_key: {key!r}")
    h = rest.hex() if tag == LOWER else rest.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def duckdb_expr(column: str) -> str:
    """DuckDB SQL computing the key of ``column`` (a VARCHAR); NULL stays NULL.

    ``encode`` takes a string's UTF-8 bytes as they are; a cast to BLOB would read ``\\x``
    escapes in it, and two strings would share a key.
    """
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN regexp_full_match({column}, '{LOWER_PATTERN}') THEN '\\x01'::BLOB || unhex(replace({column}, '-', ''))"
        f" WHEN regexp_full_match({column}, '{UPPER_PATTERN}') THEN '\\x02'::BLOB || unhex(replace({column}, '-', ''))"
        f" ELSE '\\x03'::BLOB || encode({column}) END"
    )


def bigquery_expr(column: str) -> str:
    """GoogleSQL computing the key of ``column`` (a STRING); NULL stays NULL. RE2's ``$`` is the
    end of the text (no multi-line mode), so a trailing newline is not a UUID."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN REGEXP_CONTAINS({column}, r'^{LOWER_PATTERN}$') THEN b'\\x01' || FROM_HEX(REPLACE({column}, '-', ''))"
        f" WHEN REGEXP_CONTAINS({column}, r'^{UPPER_PATTERN}$') THEN b'\\x02' || FROM_HEX(REPLACE({column}, '-', ''))"
        f" ELSE b'\\x03' || CAST({column} AS BYTES) END"
    )
