"""S3 and GCS answering 503/500 and throttling once per request; credentials expiring mid-copy."""

from __future__ import annotations

import time
import uuid

import pytest
from dagster import DagsterInstance
from dagster_aws.s3 import S3Resource
from dagster_gcp import GCSResource

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import build_manifest
from optimizely_assets.loading.staging_copy import stage_day
from optimizely_assets.resources.gcs_staging import GCSStaging
from optimizely_assets.resources.optimizely_auth import OptimizelyCredentialsResource
from optimizely_assets.resources.s3_source import S3ExportSource
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets.resources.staging import LocalStaging
from optimizely_assets_tests.conftest import SMALL, START, rows_of, upload_tree
from optimizely_assets_tests.helpers import all_clean, local_settings, query, run_day
from optimizely_assets_tests.servers import FaultProxy


@pytest.mark.parametrize("status", [503, 500])
def test_s3_errors_and_throttling_are_retried_through_a_full_run(
    tmp_path, moto_endpoint, s3_bucket, optimizely_api, export_dir, monkeypatch, status
):
    root, written = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    proxy = FaultProxy(moto_endpoint, status=status, flavour="s3").start()
    try:
        monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
        settings = local_settings(
            tmp_path / "local",
            OPTIMIZELY_PAT=optimizely_api.token,
            OPTIMIZELY_API_URL=optimizely_api.url,
            OPTIMIZELY_S3_ENDPOINT_URL=proxy.url,
        )
        result = run_day(settings, START, DagsterInstance.ephemeral())
        assert result.success and all_clean(result)
        for t in ExportType:
            n = query(settings, f"SELECT count(*) FROM {t.value}_raw WHERE export_date = ?", [START])[0][0]
            assert n == rows_of(written, t, START).rows
        assert proxy.injected >= 20  # HEAD, LIST, ranged footer GETs and full GETs all failed once
    finally:
        proxy.stop()


def test_gcs_errors_are_retried_while_staging(gcs_emulator, export_dir, monkeypatch):
    root, _ = export_dir
    proxy = FaultProxy(gcs_emulator, status=503, flavour="gcs").start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        staging = GCSStaging(gcs=GCSResource(project="test-project"), bucket=f"stage-{uuid.uuid4().hex[:8]}")
        staging.client.create_bucket(staging.bucket)
        source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
        manifest = build_manifest(source, ExportType.DECISIONS, START)
        staged = stage_day(source, staging, manifest, workers=4)
        assert staged.copied == len(manifest.files)
        blobs = {b.name: b.size for b in staging.client.list_blobs(staging.bucket)}
        assert {f"optimizely/{f.staged_name}": f.size for f in manifest.files} == blobs
        assert proxy.injected > len(manifest.files)
    finally:
        proxy.stop()


class SlowStaging(LocalStaging):
    """A slow destination, so copies outlive the source credentials."""

    def put(self, key, stream, size, source_etag, source_key):
        time.sleep(0.8)
        return super().put(key, stream, size, source_etag, source_key)


def test_credentials_expiring_mid_copy_are_refreshed_and_never_used_expired(
    tmp_path, moto_endpoint, s3_bucket, optimizely_api, export_dir
):
    root, written = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    optimizely_api.lifetime_seconds = 3.0
    source = S3ExportSource(
        s3=S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1"),
        optimizely=OptimizelyCredentialsResource(
            personal_access_token=optimizely_api.token,
            api_url=optimizely_api.url,
            duration="15m",
            refresh_margin_seconds=1,
        ),
    )
    issued: dict[str, float] = {}
    used: list[tuple[str, float]] = []

    def on_request(request, **_):
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        key_id = auth.split("Credential=")[1].split("/")[0]
        issued.setdefault(key_id, time.time())
        used.append((key_id, time.time()))

    source.client.meta.events.register_last("request-created.s3", on_request)
    manifest = build_manifest(source, ExportType.EVENTS, START, workers=2)
    staged = stage_day(source, SlowStaging(root_dir=str(tmp_path / "stage")), manifest, workers=1)
    assert staged.copied == len(rows_of(written, ExportType.EVENTS, START).files)

    keys = [k for k, _ in used]
    assert len(set(keys)) >= 2, "the copy outlived one credential and must have refreshed"
    assert len(optimizely_api.calls) >= 2
    for key_id, at in used:
        assert at - issued[key_id] < optimizely_api.lifetime_seconds, f"{key_id} used after it expired"
