"""`optimizely-assets preflight` against the local emulators, as far as they allow.

Against moto S3 + the credentials API stand-in + the GCS emulator + bqemulator, every step runs
through the real clients; the smoke load into `scratch$YYYYMMDD` is the one step bqemulator
cannot run (no partition decorators), so there it must fail and say so. On the embedded default
every step passes, the smoke load included.
"""

from __future__ import annotations

import uuid

import pytest
from google.cloud import storage

from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.preflight import run_preflight
from optimizely_assets.settings import Settings
from optimizely_assets_tests.conftest import SMALL, START, upload_tree
from optimizely_assets_tests.servers import start_bigquery_emulator


@pytest.fixture(scope="module")
def bq_url(tmp_path_factory):
    work = tmp_path_factory.mktemp("bq_preflight")
    (work / "gcs").mkdir()
    url, proc = start_bigquery_emulator(work, work / "gcs")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def cloud_settings(tmp_path, optimizely_api, moto_endpoint, bq_url, bucket: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            **extra,
            "OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local"),
            "OPTIMIZELY_PAT": optimizely_api.token,
            "OPTIMIZELY_API_URL": optimizely_api.url,
            "OPTIMIZELY_S3_ENDPOINT_URL": moto_endpoint,
            "OPTIMIZELY_GCP_PROJECT": "test-project",
            "OPTIMIZELY_GCS_BUCKET": bucket,
            "OPTIMIZELY_BQ_DATASET": f"preflight_{uuid.uuid4().hex[:6]}",
            "OPTIMIZELY_BQ_API_ENDPOINT": bq_url,
        }
    )


def lines(capsys) -> dict[str, str]:
    out = capsys.readouterr().out
    return {line[6:40].strip(): line for line in out.splitlines() if line[:4] in ("ok  ", "FAIL")}


def test_preflight_on_the_emulators_checks_every_step_the_emulators_can_run(
    tmp_path, monkeypatch, capsys, moto_endpoint, s3_bucket, optimizely_api, gcs_emulator, bq_url
):
    upload_tree(moto_endpoint, s3_bucket, _export(tmp_path))
    bucket = f"stage-{uuid.uuid4().hex[:8]}"
    storage.Client(project="test-project").create_bucket(bucket)
    monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
    code = run_preflight(cloud_settings(tmp_path, optimizely_api, moto_endpoint, bq_url, bucket))
    got = lines(capsys)
    for name in (
        "optimizely credentials API",
        "latest exported day",
        "staging write/read/delete",
        "warehouse dataset and tables",
        "dry run decisions 2024-01-02",
        "dry run events 2024-01-02",
    ):
        assert got[name].startswith("ok"), got[name]
    assert "account 5935064" in got["optimizely credentials API"]
    # How long a forgotten visitor's deleted rows stay recoverable: the dataset's own setting.
    assert "time travel for 168 h, then 7 days of fail-safe" in got["warehouse dataset and tables"]
    assert "decisions: 2024-01-02 (2 days listed)" in got["latest exported day"]
    assert "merge_canonical" in got["dry run events 2024-01-02"]
    assert "the day's MERGE and checks together" in got["dry run events 2024-01-02"]
    # The rest of a day: the ALTER, load_history, the scratch copy, the analysis run (with decisions).
    rest = got["dry run rest decisions 2024-01-02"]
    assert rest.startswith("ok") and all(
        n in rest
        for n in (
            "add_columns",
            "load_history_insert",
            "scratch_copy",
            "units_merge",
            "results_rebuild",
            "metric_sums",
        )
    ), rest
    price = got["price decisions 2024-01-02"]
    assert price.startswith("ok") and "merge_canonical ~" in price and "over 61 export days" in price
    # bqemulator has no partition decorators: the one step only a real project can pass
    assert got["smoke load decisions 2024-01-02"].startswith("FAIL") and code == 1
    assert optimizely_api.token not in capsys.readouterr().out


def test_preflight_names_the_missing_bucket_and_the_permissions_it_needs(
    tmp_path, monkeypatch, capsys, moto_endpoint, s3_bucket, optimizely_api, gcs_emulator, bq_url
):
    upload_tree(moto_endpoint, s3_bucket, _export(tmp_path))
    monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
    code = run_preflight(cloud_settings(tmp_path, optimizely_api, moto_endpoint, bq_url, "no-such-bucket"))
    got = lines(capsys)
    assert code == 1
    assert got["staging write/read/delete"].startswith("FAIL")
    assert "no-such-bucket" in got["staging write/read/delete"]
    assert "roles/storage.objectAdmin" in got["staging write/read/delete"]


def test_preflight_with_a_wrong_token_fails_at_the_credentials_api_without_printing_it(
    tmp_path, monkeypatch, capsys, moto_endpoint, s3_bucket, optimizely_api, gcs_emulator, bq_url
):
    monkeypatch.setenv("OPTIMIZELY_PAT", "pat-wrong-SECRET")
    settings = cloud_settings(tmp_path, optimizely_api, moto_endpoint, bq_url, "any")
    assert run_preflight(settings) == 1
    out = capsys.readouterr().out
    assert "FAIL  optimizely credentials API" in out and "HTTP 401" in out and "OPTIMIZELY_PAT" in out
    assert "pat-wrong-SECRET" not in out


def test_preflight_passes_every_step_on_the_embedded_default(tmp_path, capsys):
    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "local")})
    write_export(settings.local_source_dir, date_range(START, 2), SMALL)
    assert run_preflight(settings) == 0
    got = lines(capsys)
    assert "rows = footer" in got["smoke load events 2024-01-02"]
    assert not (settings.local_staging_dir / "optimizely" / "_preflight").exists() or not any(
        p.is_file() for p in (settings.local_staging_dir / "optimizely" / "_preflight").rglob("*")
    )


def _export(tmp_path):
    root = tmp_path / "export"
    write_export(root, date_range(START, 2), SMALL)
    return root


def test_preflight_fails_a_day_whose_full_window_would_pass_maximum_bytes_billed(
    tmp_path, monkeypatch, capsys, moto_endpoint, s3_bucket, optimizely_api, gcs_emulator, bq_url
):
    """Canonical is empty, so a dry run prices the window at 0; the estimate from the footers does not."""
    from optimizely_assets.loading.manifest import build_manifest
    from optimizely_assets.planning import price_day
    from optimizely_assets.resources.source import LocalExportSource

    export = _export(tmp_path)
    upload_tree(moto_endpoint, s3_bucket, export)
    bucket = f"stage-{uuid.uuid4().hex[:8]}"
    storage.Client(project="test-project").create_bucket(bucket)
    monkeypatch.setenv("OPTIMIZELY_PAT", optimizely_api.token)
    local = LocalExportSource(root_dir=str(export), account_id=SMALL.account_id)
    day = build_manifest(local, ExportType.DECISIONS, date_range(START, 2)[1])
    limit = max(price_day(day.rows, day.bytes, 30).values()) // 3  # fits a shorter horizon only
    settings = cloud_settings(
        tmp_path, optimizely_api, moto_endpoint, bq_url, bucket, OPTIMIZELY_BQ_MAXIMUM_BYTES_BILLED=str(limit)
    )
    assert run_preflight(settings) == 1
    price = lines(capsys)["price decisions 2024-01-02"]
    assert price.startswith("FAIL") and "past maximum_bytes_billed" in price
    assert "lower the loader's dedup_horizon_days to" in price
