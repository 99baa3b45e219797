"""Pure functions for the Enriched Events Export (E3) key layout.

Layout (see ``shared/reference/optimizely-e3-export.md`` §1.2):
``v1/account_id=<id>/type=decisions/date=YYYY-MM-DD/experiment=<id>/part-*.parquet``
``v1/account_id=<id>/type=events/date=YYYY-MM-DD/event=<percent-encoded name>/part-*.parquet``
with one ``_SUCCESS`` per type and date at ``type=T/date=D/_SUCCESS``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from enum import Enum
from urllib.parse import unquote

SUCCESS_MARKER = "_SUCCESS"


class ExportType(str, Enum):
    DECISIONS = "decisions"
    EVENTS = "events"

    @property
    def partition_column(self) -> str:
        """Name of the hive key below ``date=`` (and of the warehouse column that keeps it)."""
        return "experiment" if self is ExportType.DECISIONS else "event"

    @property
    def key_column(self) -> str:
        """The files' own column that the path's partition value stands for: coverage is checked on it."""
        return "experiment_id" if self is ExportType.DECISIONS else "event_name"


_ACCOUNT_RE = re.compile(r"account_id=([0-9]+)")


def account_id_from_s3_path(s3_path: str) -> str:
    """The account id in an ``s3Path`` like ``s3://optimizely-events-data/v1/account_id=123/``."""
    match = _ACCOUNT_RE.search(s3_path)
    if not match:
        raise ValueError(f"no account_id=<digits> in s3Path {s3_path!r}")
    return match.group(1)


def split_s3_path(s3_path: str) -> tuple[str, str]:
    """``s3://bucket/v1/account_id=1/`` -> (``bucket``, ``v1/account_id=1``), trailing slash normalised."""
    if not s3_path.startswith("s3://"):
        raise ValueError(f"s3Path must start with s3://, got {s3_path!r}")
    bucket, _, prefix = s3_path[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def account_prefix(account_id: str) -> str:
    return f"v1/account_id={account_id}"


def type_prefix(root: str, export_type: ExportType) -> str:
    return f"{root.strip('/')}/type={export_type.value}".lstrip("/")


def day_prefix(root: str, export_type: ExportType, day: dt.date | str) -> str:
    """Prefix of one (type, date), ending in ``/`` so it never matches ``date=2024-01-010``."""
    return f"{type_prefix(root, export_type)}/date={_iso(day)}/"


def success_key(root: str, export_type: ExportType, day: dt.date | str) -> str:
    return day_prefix(root, export_type, day) + SUCCESS_MARKER


# Spark's ExternalCatalogUtils.escapePathName: these characters become %XX, all else stays.
_SPARK_ESCAPED = frozenset("\"#%'*/:=?\\\x7f{[]^") | frozenset(chr(c) for c in range(0x20))


def encode_partition_value(value: str) -> str:
    """Spark/Hive path escaping of a partition value (``:`` -> ``%3A``, space kept)."""
    return "".join(f"%{ord(ch):02X}" if ch in _SPARK_ESCAPED else ch for ch in value)


def decode_partition_value(value: str) -> str:
    """Percent-decode a path value as UTF-8; a value that does not decode to UTF-8 is kept as written.

    The one decoding rule of the project. Only paths are decoded (for display and the manifest);
    the warehouse compares the files' own columns, so no SQL decodes anything.
    """
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def is_data_file(key: str) -> bool:
    """Parquet parts only: ``_SUCCESS``, ``*.crc`` and other side files are ignored."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def partition_value_of(key: str, export_type: ExportType) -> str:
    """The raw (still percent-encoded) ``experiment=``/``event=`` value of a data file key."""
    marker = f"/{export_type.partition_column}="
    idx = key.find(marker)
    if idx < 0:
        raise ValueError(f"{key!r} has no {export_type.partition_column}= directory below its date partition")
    return key[idx + len(marker) :].split("/", 1)[0]


class UnmappableKeyError(ValueError):
    """A source key that cannot be given a safe staged name; the message names it."""


# Staged names use only these characters: no loader globs them (BigQuery URIs treat `*` as a
# wildcard, DuckDB's read_parquet globs `*`, `?`, `[...]`, `{...}`), and no `..` segment can occur.
_SAFE_ROOT = re.compile(r"^[A-Za-z0-9_=.-]+(/[A-Za-z0-9_=.-]+)*$")


def staged_name(root: str, export_type: ExportType, day: dt.date | str, key: str) -> str:
    """The staging name of a source data file: ``<root>/type=T/date=D/<sha256(key)[:32]>.parquet``.

    Derived from the whole source key, so it is unique per key and never depends on what the key
    contains; the manifest keeps the mapping back to the source key.
    """
    prefix = day_prefix(root, export_type, day)
    if not key.startswith(prefix) or len(key) == len(prefix):
        raise UnmappableKeyError(f"{key!r} is not a file below {prefix!r}")
    if not _SAFE_ROOT.match(root.strip("/")) or ".." in root.split("/"):
        raise UnmappableKeyError(f"source root {root!r} has characters a loader could misread")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{prefix}{digest}.parquet"


def _iso(day: dt.date | str) -> str:
    if isinstance(day, dt.date):
        return day.isoformat()
    dt.date.fromisoformat(day)  # validates
    return day


def compact_date(day: dt.date | str) -> str:
    """``2024-01-02`` -> ``20240102`` for BigQuery partition decorators."""
    return _iso(day).replace("-", "")
