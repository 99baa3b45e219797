"""S3 source against moto's server: Optimizely PAT credentials, ranged footer reads, refresh."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from dagster import DagsterInstance

from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import build_manifest
from optimizely_assets.resources.optimizely_auth import CredentialsError, OptimizelyCredentialsResource
from optimizely_assets.resources.s3_source import S3ExportSource
from optimizely_assets_tests.conftest import SMALL, START, rows_of, upload_tree
from optimizely_assets_tests.helpers import all_clean, local_settings, query, run_day


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
    assert len(fetched) == len(manifest.files)  # one ranged GET a file: the footer parsed from memory


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


def test_full_run_from_s3_with_pat_keeps_secrets_out_of_run_storage(
    tmp_path, moto_endpoint, s3_bucket, optimizely_api, export_dir, monkeypatch
):
    root, written = export_dir
    upload_tree(moto_endpoint, s3_bucket, root)
    env = {"OPTIMIZELY_API_URL": optimizely_api.url, "OPTIMIZELY_S3_ENDPOINT_URL": moto_endpoint}
    storage = tmp_path / "dagster_home"
    storage.mkdir()
    instance = DagsterInstance.local_temp(tempdir=str(storage))

    monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
    settings = local_settings(tmp_path / "local", OPTIMIZELY_PAT=optimizely_api.token, **env)
    assert settings.source == "s3"
    result = run_day(settings, START, instance)
    assert result.success
    assert all_clean(result)
    for export_type in ExportType:
        n = query(settings, f"SELECT count(*) FROM {export_type.value}_raw WHERE export_date = ?", [START])[
            0
        ][0]
        assert n == rows_of(written, export_type, START).rows

    # A failing run too: a wrong token, whose error travels through the event log.
    wrong = "pat-2:WRONG-secret-token-value"
    monkeypatch.setenv("OPTIMIZELY_PAT", wrong)
    failed = run_day(local_settings(tmp_path / "local", OPTIMIZELY_PAT=wrong, **env), START, instance)
    assert not failed.success
    errors = [e.step_failure_data.error.to_string() for e in failed.all_events if e.is_step_failure]
    assert any("HTTP 401" in e for e in errors)

    # Grep everything the instance stored: run and event sqlite databases, compute logs.
    secrets = [
        optimizely_api.token,
        wrong,
        optimizely_api.secret_access_key,
        "optimizely-session-token",
    ]
    stored = [p for p in storage.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in stored)
    for path in stored:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {path}"
