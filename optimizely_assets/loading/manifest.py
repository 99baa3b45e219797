"""A day's manifest: which source files make up one (type, date), with footer row counts."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from optimizely_assets.e3.layout import (
    ExportType,
    UnmappableKeyError,
    day_prefix,
    decode_partition_value,
    is_data_file,
    partition_value_of,
    staged_name,
    success_key,
)
from optimizely_assets.e3.parquet_footer import UNKNOWN, ParquetFileError
from optimizely_assets.e3.schemas import SCHEMAS, nested_added, schema_drift, show_path
from optimizely_assets.resources.source import ExportSource, SourceObject


class DayNotReadyError(RuntimeError):
    """The day has no ``_SUCCESS`` marker yet."""


@dataclass(frozen=True)
class ManifestFile:
    key: str
    size: int
    etag: str
    rows: int
    partition_value: str  # as in the path (percent-encoded)
    staged_name: str  # the safe name it is staged under (layout.staged_name)
    key_value: str | None = None  # the file's experiment_id / event_name (footer statistics)
    key_value_known: bool = False  # False: statistics absent or several values in the file
    added_fields: tuple[pa.Field, ...] = ()  # columns beyond the known schema, with their types
    columns: tuple[str, ...] = ()  # the file's column names in its order (footer); () if unknown
    # known columns the file widens with fields inside them (attributes[].source), as the file has them
    widened_fields: tuple[pa.Field, ...] = ()

    @property
    def added_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.added_fields)


@dataclass(frozen=True)
class QuarantinedFile:
    key: str
    size: int
    etag: str
    reason: str


class BadSourceFilesError(ParquetFileError):
    """One or more of the day's files cannot be loaded; lists every one of them."""


@dataclass(frozen=True)
class DayManifest:
    export_type: ExportType
    day: dt.date
    source_root_uri: str
    success_etag: str | None
    success_last_modified: dt.datetime | None
    files: tuple[ManifestFile, ...]
    ignored: tuple[str, ...] = field(default=())  # non-Parquet objects under the day
    quarantined: tuple[QuarantinedFile, ...] = field(
        default=()
    )  # bad files set aside (bad_files="quarantine")

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def rows_by_partition(self) -> dict[str, int]:
        """Rows per experiment/event as the path names it (decoded), for display."""
        out: dict[str, int] = {}
        for f in self.files:
            name = decode_partition_value(f.partition_value)
            out[name] = out.get(name, 0) + f.rows
        return out

    def rows_by_key(self) -> dict[str | None, int] | None:
        """Rows per value of the files' own key column (experiment_id / event_name; None = NULL).

        None when a file's statistics cannot tell its value: then only totals can be compared.
        """
        if any(not f.key_value_known for f in self.files):
            return None
        out: dict[str | None, int] = {}
        for f in self.files:
            out[f.key_value] = out.get(f.key_value, 0) + f.rows
        return out

    @property
    def added_fields(self) -> list[pa.Field]:
        by_name = {fld.name: fld for f in self.files for fld in f.added_fields}
        return [by_name[n] for n in sorted(by_name)]

    @property
    def added_columns(self) -> list[str]:
        return [f.name for f in self.added_fields]

    @property
    def widened_fields(self) -> list[pa.Field]:
        """Every distinct widened column type among the files (the loader adds each one's fields)."""
        seen: dict[tuple[str, str], pa.Field] = {}
        for f in self.files:
            for fld in f.widened_fields:
                seen.setdefault((fld.name, str(fld.type)), fld)
        return [seen[k] for k in sorted(seen)]

    @property
    def added_nested(self) -> list[str]:
        """Fields added inside known columns, at any depth: ``attributes[].source``."""
        expected = SCHEMAS[self.export_type]
        return sorted(
            {
                show_path(path)
                for fld in self.widened_fields
                for path, _ in nested_added(expected.field(fld.name).type, fld.type, (fld.name,))
            }
        )


def build_manifest(
    source: ExportSource,
    export_type: ExportType,
    day: dt.date,
    *,
    require_success: bool = True,
    allow_missing_columns: bool = False,
    quarantine_bad_files: bool = False,
    workers: int = 16,
) -> DayManifest:
    """List the day once it is complete and read every file's footer (ranged reads only).

    A file that is not Parquet, is empty or truncated, or lacks/retypes a known column fails
    the day with an error naming every such file, before anything is staged or loaded; with
    ``quarantine_bad_files`` those files are set aside instead and the rest is loaded.
    """
    marker = source.head(success_key(source.root, export_type, day))
    if marker is None and require_success:
        raise DayNotReadyError(
            f"type={export_type.value} date={day.isoformat()}: no _SUCCESS at "
            f"{source.uri(success_key(source.root, export_type, day))}; the day is not complete yet"
        )
    prefix = day_prefix(source.root, export_type, day)
    objects = source.list_objects(prefix)
    data = [o for o in objects if is_data_file(o.key)]
    ignored = tuple(o.key for o in objects if not is_data_file(o.key) and not o.key.endswith("/_SUCCESS"))
    expected = SCHEMAS[export_type]

    unmappable = []
    for o in data:
        try:
            staged_name(source.root, export_type, day, o.key)
        except UnmappableKeyError as exc:
            unmappable.append(str(exc))
    if unmappable:
        raise UnmappableKeyError(
            f"type={export_type.value} date={day.isoformat()}: {len(unmappable)} key(s) cannot be staged "
            "safely; nothing was staged or loaded:\n" + "\n".join(f"  {u}" for u in unmappable)
        )

    column_lists: dict[tuple[str, ...], tuple[str, ...]] = {}

    def inspect(obj: SourceObject) -> ManifestFile | QuarantinedFile:
        try:
            return check_file(obj)
        except (ParquetFileError, ValueError) as exc:
            return QuarantinedFile(obj.key, obj.size, obj.etag, str(exc))

    def check_file(obj: SourceObject) -> ManifestFile:
        footer = source.footer(obj, (export_type.key_column,))
        drift = schema_drift(expected, footer.schema)
        problems = []
        if drift["retyped"]:
            problems.append(f"columns with another type: {', '.join(drift['retyped'])}")
        if drift["missing"] and not allow_missing_columns:
            problems.append(f"missing columns: {', '.join(drift['missing'])}")
        # DuckDB and BigQuery name columns case-insensitively: Experiment_ID beside experiment_id
        # cannot load (DuckDB: an ambiguous binder error that names no file).
        lower: dict[str, list[str]] = {}
        for name in footer.schema.names:
            lower.setdefault(name.lower(), []).append(name)
        clashes = sorted(" / ".join(names) for names in lower.values() if len(names) > 1)
        if clashes:
            problems.append(f"columns whose names differ only in case: {', '.join(clashes)}")
        if problems:
            raise ParquetFileError(
                f"{source.uri(obj.key)} does not match the {export_type.value} schema ("
                + "; ".join(problems)
                + ")"
            )
        value = footer.column_values.get(export_type.key_column, UNKNOWN)
        names = tuple(footer.schema.names)
        return ManifestFile(
            key=obj.key,
            size=obj.size,
            etag=obj.etag,
            rows=footer.rows,
            partition_value=partition_value_of(obj.key, export_type),
            staged_name=staged_name(source.root, export_type, day, obj.key),
            key_value=None if value is UNKNOWN else value,  # type: ignore[arg-type]
            key_value_known=value is not UNKNOWN,
            added_fields=tuple(footer.schema.field(n) for n in drift["added"]),
            widened_fields=tuple(footer.schema.field(n) for n in drift["widened"]),
            # One shared tuple per column list: a stored manifest of 10,000 files pickles it once.
            columns=column_lists.setdefault(names, names),
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        inspected = list(pool.map(inspect, data))
    files = tuple(f for f in inspected if isinstance(f, ManifestFile))
    bad = tuple(f for f in inspected if isinstance(f, QuarantinedFile))
    if bad and not quarantine_bad_files:
        raise BadSourceFilesError(
            f"type={export_type.value} date={day.isoformat()}: {len(bad)} bad file(s); nothing was staged "
            "or loaded for this day (set the loader's bad_files to 'quarantine' to load the rest):\n"
            + "\n".join(f"  {b.reason}" for b in bad)
        )
    return DayManifest(
        export_type=export_type,
        day=day,
        source_root_uri=source.uri(prefix),
        success_etag=marker.etag if marker else None,
        success_last_modified=marker.last_modified if marker else None,
        files=files,
        ignored=ignored,
        quarantined=bad,
    )
