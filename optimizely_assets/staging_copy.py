"""Copy a day's manifest from the source to staging: streamed, parallel, skipping identical files."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from optimizely_assets.layout import day_prefix
from optimizely_assets.manifest import DayManifest
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging

QUARANTINE_PREFIX = "_quarantine/"


@dataclass(frozen=True)
class StagedDay:
    uris: tuple[str, ...]
    type_root_uri: str  # staging URI of ``.../type=<t>`` (hive partitioning prefix)
    copied: int
    skipped: int
    deleted: int
    bytes_copied: int


def stage_day(
    source: ExportSource,
    staging: Staging,
    manifest: DayManifest,
    *,
    workers: int = 8,
    attempts: int = 4,
) -> StagedDay:
    prefix = day_prefix(source.root, manifest.export_type, manifest.day)
    present = staging.existing(prefix)
    wanted = {f.key: f for f in manifest.files}
    todo = [
        f
        for f in manifest.files
        if not (f.key in present and present[f.key].size == f.size and present[f.key].source_etag == f.etag)
    ]

    def copy(key: str, size: int, etag: str, dest_key: str | None = None) -> int:
        dest_key = dest_key or key
        for attempt in range(1, attempts + 1):
            try:
                with source.open_stream(key) as stream:
                    staging.put(dest_key, stream, size, etag)
                return size
            except Exception as exc:  # noqa: BLE001 - retried, then re-raised with the file named
                if attempt == attempts:
                    raise RuntimeError(
                        f"copying {source.uri(key)} to {staging.uri(dest_key)} failed after "
                        f"{attempts} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                time.sleep(min(0.2 * 2**attempt, 5.0) * (1 + random.random()))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        copied_bytes = sum(pool.map(lambda f: copy(f.key, f.size, f.etag), todo))
        # Quarantined files are kept outside the day's prefix, for inspection, never loaded.
        list(pool.map(lambda q: copy(q.key, q.size, q.etag, QUARANTINE_PREFIX + q.key), manifest.quarantined))
    # Files Optimizely no longer lists for the day (a rewrite) must not be loaded again.
    stale = sorted(k for k in present if k not in wanted)
    staging.delete(stale)
    staging.commit_day(prefix, {f.key: f.etag for f in manifest.files})
    type_root = staging.uri(prefix).rsplit("/date=", 1)[0]
    return StagedDay(
        uris=tuple(staging.uri(f.key) for f in manifest.files),
        type_root_uri=type_root,
        copied=len(todo),
        skipped=len(manifest.files) - len(todo),
        deleted=len(stale),
        bytes_copied=copied_bytes,
    )
