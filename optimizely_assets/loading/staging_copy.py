"""Copy a day's manifest from the source to staging: streamed, parallel, skipping identical files."""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from optimizely_assets.e3.layout import day_prefix
from optimizely_assets.loading.manifest import DayManifest
from optimizely_assets.privacy.staged import DaySuppression, day_suppression, scrub_staged
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import StagedObject, Staging

QUARANTINE_PREFIX = "_quarantine/"


def quarantine_name(key: str) -> str:
    """Quarantined files keep a readable but safe name: a key may hold ``..`` or glob characters."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    tail = re.sub(r"[^A-Za-z0-9_.=-]", "_", key.rsplit("/", 1)[-1])[:80].lstrip(".")
    return f"{digest}-{tail}"


@dataclass(frozen=True)
class StagedFile:
    uri: str  # the staged object, under a name no loader can misread (layout.staged_name)
    source_uri: str  # the Optimizely object it was copied from: errors name both
    rows: int
    columns: tuple[str, ...] = ()  # the file's column names in order (its footer); () if unknown


def same_columns(files: list[StagedFile]) -> bool:
    """Every file has the same known column names in the same order."""
    return bool(files) and files[0].columns != () and all(f.columns == files[0].columns for f in files)


@dataclass(frozen=True)
class StagedDay:
    files: tuple[StagedFile, ...]
    day_uri: str  # staging URI of the day's folder
    added_fields: tuple[pa.Field, ...]  # columns the files add beyond the known schema, then the
    # known columns they widen with nested fields (as the files have them)
    copied: int
    skipped: int
    deleted: int
    bytes_copied: int
    linked: int = 0  # of ``copied``: hard links to a local source, no bytes moved
    suppressed: DaySuppression = DaySuppression()  # forgotten visitors' rows the staged files lack


def stage_day(
    source: ExportSource,
    staging: Staging,
    manifest: DayManifest,
    *,
    workers: int = 8,
    attempts: int = 4,
    suppress: Callable | None = None,
) -> StagedDay:
    """``suppress``: a matcher of forgotten visitors (privacy/scrub.py); the files this run copies
    are scrubbed of them before anything loads them."""
    prefix = day_prefix(source.root, manifest.export_type, manifest.day)
    present = staging.existing(prefix)
    records = staging.suppressed(prefix)
    wanted = {f.staged_name: f for f in manifest.files}

    def staged_already(f) -> bool:
        scrubbed = records.get(f.staged_name)
        if scrubbed is not None and scrubbed.source_etag == f.etag:  # this version, minus forgotten rows
            return scrubbed.deleted or f.staged_name in present
        got = present.get(f.staged_name)
        return got is not None and got.size == f.size and got.source_etag == f.etag

    todo = [f for f in manifest.files if not staged_already(f)]

    def copy(key: str, size: int, etag: str, dest_key: str) -> tuple[int, bool]:
        for attempt in range(1, attempts + 1):
            try:
                path = source.local_path(key)
                if path is not None and staging.link(dest_key, path, size):
                    return 0, True
                with source.open_stream(key) as stream:
                    staging.put(dest_key, stream, size, etag, key)
                return size, False
            except Exception as exc:  # noqa: BLE001 - retried, then re-raised with the file named
                if attempt == attempts:
                    raise RuntimeError(
                        f"copying {source.uri(key)} to {staging.uri(dest_key)} failed after "
                        f"{attempts} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                time.sleep(min(0.2 * 2**attempt, 5.0) * (1 + random.random()))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = list(pool.map(lambda f: copy(f.key, f.size, f.etag, f.staged_name), todo))
        # Quarantined files are kept outside the day's prefix, for inspection, never loaded.
        list(
            pool.map(
                lambda q: copy(q.key, q.size, q.etag, QUARANTINE_PREFIX + quarantine_name(q.key)),
                manifest.quarantined,
            )
        )
    # Files Optimizely no longer lists for the day (a rewrite) must not be loaded again.
    stale = sorted(k for k in present if k not in wanted)
    staging.delete(stale)
    staging.commit_day(prefix, {f.staged_name: (f.etag, f.key) for f in manifest.files})
    if suppress is not None and todo:
        copies = [StagedObject(f.staged_name, f.size, f.etag, f.key) for f in todo]
        records.update(scrub_staged(staging, copies, suppress, manifest.export_type.key_column, workers))
    suppressed = day_suppression(records, {f.staged_name: f.etag for f in manifest.files})
    removed = dict(suppressed.by_file)
    return StagedDay(
        files=tuple(
            StagedFile(
                staging.uri(f.staged_name),
                source.uri(f.key),
                f.rows - removed.get(f.staged_name, 0),
                f.columns,
            )
            for f in manifest.files
            if f.staged_name not in suppressed.deleted_files
        ),
        day_uri=staging.uri(prefix),
        added_fields=(*manifest.added_fields, *manifest.widened_fields),
        copied=len(todo),
        skipped=len(manifest.files) - len(todo),
        deleted=len(stale),
        bytes_copied=sum(n for n, _ in done),
        linked=sum(linked for _, linked in done),
        suppressed=suppressed,
    )
