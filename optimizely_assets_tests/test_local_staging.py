"""Local staging: hard links to a local source on one filesystem, byte copies across filesystems."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import build_manifest
from optimizely_assets.loading.staging_copy import stage_day
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets.resources.staging import LocalStaging
from optimizely_assets_tests.conftest import SMALL, START


def _stage(root: Path, staging_dir: Path, **kwargs):
    source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
    staging = LocalStaging(root_dir=str(staging_dir))
    manifest = build_manifest(source, ExportType.DECISIONS, START)
    return source, staging, manifest, stage_day(source, staging, manifest, **kwargs)


def test_one_filesystem_links_the_files_and_a_rewrite_is_staged_again(export_dir, tmp_path):
    root, _ = export_dir
    source, staging, manifest, first = _stage(root, tmp_path / "staging")
    assert first.copied == first.linked == len(manifest.files) > 1 and first.bytes_copied == 0
    for f, s in zip(manifest.files, first.files, strict=True):
        assert os.stat(s.uri).st_ino == (root / f.key).stat().st_ino
    assert not [p for p in (tmp_path / "staging").rglob(".tmp-*")]

    again = stage_day(source, staging, manifest)
    assert again.copied == 0 and again.skipped == len(manifest.files)

    # Rewritten by rename (a sync tool's way): the staged link still holds the old bytes, and
    # the new mtime is a new ETag, so the next run stages the new file.
    victim = root / manifest.files[0].key
    replacement = victim.with_name(".new")
    shutil.copyfile(victim, replacement)
    os.replace(replacement, victim)
    newer = build_manifest(source, ExportType.DECISIONS, START)
    result = stage_day(source, staging, newer)
    assert (result.copied, result.linked) == (1, 1)
    staged = staging.uri(newer.files[0].staged_name)
    assert os.stat(staged).st_ino == victim.stat().st_ino

    # Rewritten in place (same inode, new mtime): staged again onto the link it already has;
    # the rename of one link over another to the same file does nothing, and no temp is left.
    victim.write_bytes(victim.read_bytes())
    rewritten = stage_day(source, staging, build_manifest(source, ExportType.DECISIONS, START))
    assert (rewritten.copied, rewritten.linked) == (1, 1)
    assert not [p for p in (tmp_path / "staging").rglob(".tmp-*")]


def test_another_filesystem_copies_the_bytes(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the test's tmp directory")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        root = Path(other) / "source"
        write_export(root, [START], SMALL, types=[ExportType.DECISIONS])
        _, _, manifest, staged = _stage(root, tmp_path / "staging")
        assert staged.copied == len(manifest.files) and staged.linked == 0
        assert staged.bytes_copied == manifest.bytes
        for f, s in zip(manifest.files, staged.files, strict=True):
            assert Path(s.uri).read_bytes() == (root / f.key).read_bytes()
            assert os.stat(s.uri).st_nlink == 1


def test_a_file_that_changed_size_since_the_listing_fails_by_name_and_stages_nothing(export_dir, tmp_path):
    root, _ = export_dir
    source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
    staging = LocalStaging(root_dir=str(tmp_path / "staging"))
    manifest = build_manifest(source, ExportType.DECISIONS, START)
    grown = manifest.files[1]
    with open(root / grown.key, "ab") as fh:
        fh.write(b"late bytes")
    with pytest.raises(RuntimeError, match="failed after 1 attempts") as err:
        stage_day(source, staging, manifest, attempts=1)
    assert source.uri(grown.key) in str(err.value) and f"of {grown.size} bytes" in str(err.value)
    assert not Path(staging.uri(grown.staged_name)).exists()
    assert not [p for p in (tmp_path / "staging").rglob(".tmp-*")]
