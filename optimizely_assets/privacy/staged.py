"""Staged files without forgotten visitors: scrubbed after a forget, and as later loads stage them.

Each file is fetched (GCS: downloaded to a temporary file; local: read in place), scrubbed
(privacy/scrub.py), and put back in place of the staged object under the same name with its source
ETag, or deleted when nothing is left; the staging records what it lacks (``Suppressed``), so the
footer check reconciles exactly and a re-run does not copy the file again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from optimizely_assets.privacy.scrub import scrub_file
from optimizely_assets.resources.staging import StagedObject, Staging, Suppressed


@dataclass(frozen=True)
class DaySuppression:
    """What a day's staged files lack of their source (current source versions only)."""

    rows: int = 0
    by_key: tuple[tuple[str | None, int], ...] = ()
    by_file: tuple[tuple[str, int], ...] = ()  # staged name -> rows it lacks
    deleted_files: tuple[str, ...] = ()  # staged names scrubbed to nothing (not loaded)


def day_suppression(records: dict[str, Suppressed], etags: dict[str, str]) -> DaySuppression:
    """The records of the files still staged from the same source version (``etags``: staged name
    -> the source ETag the manifest lists now)."""
    current = {k: s for k, s in records.items() if etags.get(k) == s.source_etag}
    by_key: dict[str | None, int] = {}
    for s in current.values():
        for k, n in s.by_key:
            by_key[k] = by_key.get(k, 0) + n
    return DaySuppression(
        sum(s.rows for s in current.values()),
        tuple(sorted(by_key.items(), key=lambda kv: (kv[0] is None, str(kv[0])))),
        tuple(sorted((k, s.rows) for k, s in current.items())),
        tuple(sorted(k for k, s in current.items() if s.deleted)),
    )


def suppression_of(staging: Staging, source_root: str, manifest) -> DaySuppression:
    """What the day's staged files lack now, for the checks (read from the staging's records, so
    a check run after a forget sees the forget)."""
    from optimizely_assets.e3.layout import day_prefix

    records = staging.suppressed(day_prefix(source_root, manifest.export_type, manifest.day))
    return (
        day_suppression(records, {f.staged_name: f.etag for f in manifest.files})
        if records
        else DaySuppression()
    )


def scrub_staged(
    staging: Staging,
    objects: list[StagedObject],
    match: Callable,
    key_column: str,
    workers: int = 4,
) -> dict[str, Suppressed]:
    """Scrub each staged object; returns staged name -> what it now lacks, for those changed."""

    def one(obj: StagedObject) -> tuple[str, Suppressed] | None:
        with tempfile.TemporaryDirectory(prefix="optimizely-scrub-") as tmp:
            src = staging.fetch(obj.key, Path(tmp) / "staged.parquet")
            dst = Path(tmp) / "scrubbed.parquet"
            done = scrub_file(src, dst, match, key_column)
            if done is None:
                return None
            suppressed = Suppressed(
                obj.source_etag or "",
                done.rows_removed,
                tuple(done.removed_by_key.items()),
                done.rows_left == 0,
            )
            staging.replace(obj.key, dst, obj, suppressed)
            return obj.key, suppressed

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(r for r in pool.map(one, objects) if r is not None)
