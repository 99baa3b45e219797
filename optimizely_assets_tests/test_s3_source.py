"""S3 source against moto's server: Optimizely PAT credentials, ranged footer reads, refresh."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from dagster import DagsterInstance

from optimizely_assets.layout import ExportType
from optimizely_assets.manifest import build_manifest
from optimizely_assets.resources.optimizely_auth import CredentialsError, OptimizelyCredentialsResource
from optimizely_assets.resources.source import S3ExportSource
from optimizely_assets.synthetic import write_export
from optimizely_assets_tests.conftest import SMALL, START, rows_of, upload_tree
from optimizely_assets_tests.helpers import checks_of, local_settings, query, run_day


def _source(moto_endpoint: str, api, **kw) -> S3ExportSource:
    from dagster_aws.s3 import S3Resource

    return S3ExportSource(
        s3=S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1"),
        optimizely=OptimizelyCredentialsResource(personal_access_token=api.token, api_url=api.url, **kw),
    )


def test_manifest_from_s3_uses_pat_credentials_and_footer_row_counts(
    moto_endpoint, s3_bucket, optimizely_api, export_dir
):
    root, written = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    source = _source(moto_endpoint, optimizely_api)
    manifest = build_manifest(source, ExportType.EVENTS, START)
    w = rows_of(written, ExportType.EVENTS, START)
    assert source.bucket_name == s3_bucket and source.root == f"v1/account_id={SMALL.account_id}"
    assert {f.key for f in manifest.files} == set(w.files)
    assert manifest.rows == w.rows
    assert manifest.success_etag
    assert optimizely_api.calls[0] == {"path": "/v2/export/credentials", "duration": "1h", "auth_ok": True}


def test_footer_reads_are_ranged_not_full_downloads(moto_endpoint, s3_bucket, optimizely_api, tmp_path):
    root = tmp_path / "big"
    spec = replace(SMALL, experiments=2, decisions_per_day=60_000)
    write_export(root, [START], spec, types=[ExportType.DECISIONS])
    upload_tree(moto_endpoint, s3_bucket, root)
    source = _source(moto_endpoint, optimizely_api)
    fetched: list[int] = []

    def count(**kwargs):
        if kwargs.get("params", {}).get("Range"):
            a, b = kwargs["params"]["Range"][6:].split("-")
            fetched.append(int(b) - int(a) + 1)

    source.client.meta.events.register("provide-client-params.s3.GetObject", count)
    manifest = build_manifest(source, ExportType.DECISIONS, START, workers=1)
    assert fetched, "footers must be read with ranged GETs"
    assert manifest.rows == 60_000 and manifest.bytes > 1_000_000
    assert sum(fetched) < manifest.bytes / 10


def test_credentials_are_refreshed_before_they_expire(moto_endpoint, s3_bucket, optimizely_api, export_dir):
    root, _ = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    # Credentials that live 3 s with a 2 s margin: every call after the first second refreshes.
    optimizely_api.lifetime_seconds = 3
    source = _source(moto_endpoint, optimizely_api, duration="15m", refresh_margin_seconds=2)
    source.list_objects(source.root + "/")
    time.sleep(1.5)
    build_manifest(source, ExportType.DECISIONS, START, workers=2)
    assert len(optimizely_api.calls) >= 2
    assert all(c["auth_ok"] and c["duration"] == "15m" for c in optimizely_api.calls)


def test_bad_token_fails_with_a_clear_error_that_hides_the_token(moto_endpoint, optimizely_api):
    bad = OptimizelyCredentialsResource(
        personal_access_token="pat-wrong-SECRET-VALUE", api_url=optimizely_api.url
    )
    with pytest.raises(CredentialsError) as err:
        bad.fetch()
    assert "HTTP 401" in str(err.value) and "OPTIMIZELY_PAT" in str(err.value)
    assert "SECRET" not in str(err.value)


def test_full_run_from_s3_with_pat_keeps_secrets_out_of_the_event_log(
    tmp_path, moto_endpoint, s3_bucket, optimizely_api, export_dir, monkeypatch
):
    root, written = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
    settings = local_settings(
        tmp_path / "local",
        OPTIMIZELY_PAT=optimizely_api.token,
        OPTIMIZELY_API_URL=optimizely_api.url,
        OPTIMIZELY_S3_ENDPOINT_URL=moto_endpoint,
    )
    assert settings.source == "s3"
    instance = DagsterInstance.ephemeral()
    result = run_day(settings, START, instance)
    assert result.success
    assert all(checks_of(result).values())
    for export_type in ExportType:
        n = query(settings, f'SELECT count(*) FROM {export_type.value}_raw WHERE "date" = ?', [START])[0][0]
        assert n == rows_of(written, export_type, START).rows
    # Secrets: neither the PAT nor the temporary keys appear anywhere in the run's events.
    log = "\n".join(
        str(e.dagster_event) + str(e.user_message) for e in instance.all_logs(result.run_id)
    ) + str(instance.get_run_by_id(result.run_id).run_config)
    for secret in (optimizely_api.token, optimizely_api.secret_access_key, "optimizely-session-token"):
        assert secret not in log
