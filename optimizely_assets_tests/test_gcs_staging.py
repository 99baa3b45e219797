"""GCS staging against a local GCS emulator (google-cloud-storage on the wire)."""

from __future__ import annotations

import re
import uuid

import pytest
from dagster_gcp import GCSResource

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import build_manifest
from optimizely_assets.loading.staging_copy import stage_day
from optimizely_assets.resources.gcs_staging import GCSStaging
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets_tests.conftest import SMALL, START


@pytest.fixture
def staging(gcs_emulator) -> GCSStaging:
    resource = GCSStaging(gcs=GCSResource(project="test-project"), bucket=f"stage-{uuid.uuid4().hex[:8]}")
    resource.client.create_bucket(resource.bucket)
    return resource


def test_stage_day_copies_under_safe_names_and_skips_identical(staging, export_dir):
    root, written = export_dir
    source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
    manifest = build_manifest(source, ExportType.EVENTS, START)

    first = stage_day(source, staging, manifest, workers=4)
    assert first.copied == len(manifest.files) and first.skipped == 0
    assert first.bytes_copied == manifest.bytes
    day_uri = f"gs://{staging.bucket}/optimizely/v1/account_id={SMALL.account_id}/type=events/date={START}/"
    assert first.day_uri == day_uri
    # Source keys hold %, :, ; and spaces; staged names hold none of them, whatever the key.
    assert any("%3A" in f.key for f in manifest.files)
    assert all(re.fullmatch(re.escape(day_uri) + "[0-9a-f]{32}[.]parquet", f.uri) for f in first.files)
    assert sorted(f.source_uri for f in first.files) == sorted(source.uri(f.key) for f in manifest.files)

    blobs = {b.name: b for b in staging.client.list_blobs(staging.bucket)}
    for f in manifest.files:
        blob = blobs[f"optimizely/{f.staged_name}"]
        assert blob.size == f.size and blob.metadata["source_etag"] == f.etag
        assert blob.metadata["source_key"] == f.key
        # A fresh handle builds the URL client-side (the emulator's mediaLink mis-encodes '%').
        fresh = staging.client.bucket(staging.bucket).blob(blob.name)
        assert fresh.download_as_bytes() == (root / f.key).read_bytes()

    again = stage_day(source, staging, manifest, workers=4)
    assert again.copied == 0 and again.skipped == len(manifest.files)


def test_stage_day_recopies_changed_files_and_deletes_stale_ones(staging, export_dir):
    root, _ = export_dir
    source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
    manifest = build_manifest(source, ExportType.DECISIONS, START)
    stage_day(source, staging, manifest)

    removed, rewritten = manifest.files[0], manifest.files[1]
    (root / removed.key).unlink()
    data = (root / rewritten.key).read_bytes()
    (root / rewritten.key).write_bytes(data)  # same bytes, new mtime: a new source ETag
    newer = build_manifest(source, ExportType.DECISIONS, START)
    result = stage_day(source, staging, newer)
    assert result.deleted == 1 and result.copied == 1
    names = {b.name for b in staging.client.list_blobs(staging.bucket)}
    assert f"optimizely/{removed.staged_name}" not in names and f"optimizely/{rewritten.staged_name}" in names
