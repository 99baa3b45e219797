from __future__ import annotations

import pytest

from optimizely_assets.resources.optimizely_auth import (
    CredentialsError,
    OptimizelyCredentialsResource,
    duration_seconds,
    parse_credentials_response,
)
from optimizely_assets.settings import Settings, SettingsError

DOCUMENTED = {
    "credentials": {
        "accessKeyId": "access_key_id",
        "secretAccessKey": "access_secret_key",
        "sessionToken": "session_token",
        "expiration": 1591026407394,
    },
    "s3Path": "s3://optimizely-events-data/v1/account_id=123",
}


def test_documented_response_parses():
    creds = parse_credentials_response(DOCUMENTED)
    assert (creds.bucket, creds.prefix, creds.account_id) == (
        "optimizely-events-data",
        "v1/account_id=123",
        "123",
    )
    assert creds.expiration.isoformat() == "2020-06-01T15:46:47.394000+00:00"
    assert "access_secret_key" not in repr(creds) and "session_token" not in repr(creds)


@pytest.mark.parametrize("missing", ["accessKeyId", "secretAccessKey", "sessionToken", "expiration"])
def test_response_missing_a_field_is_rejected_by_name(missing):
    body = {
        "credentials": {k: v for k, v in DOCUMENTED["credentials"].items() if k != missing},
        "s3Path": DOCUMENTED["s3Path"],
    }
    with pytest.raises(CredentialsError, match=missing):
        parse_credentials_response(body)
    with pytest.raises(CredentialsError, match="s3Path"):
        parse_credentials_response({"credentials": DOCUMENTED["credentials"]})


@pytest.mark.parametrize(
    ("value", "seconds"), [("1h", 3600), ("1H", 3600), ("15m", 900), ("30M", 1800), ("60m", 3600)]
)
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["10m", "2h", "90m", "1d", ""])
def test_bad_durations_fail_when_the_resource_is_built(value):
    with pytest.raises(Exception, match="15m..60m"):
        OptimizelyCredentialsResource(personal_access_token="x", duration=value)


def test_unreachable_api_error_names_the_url_not_the_token():
    resource = OptimizelyCredentialsResource(
        personal_access_token="pat-SECRET", api_url="http://127.0.0.1:9", timeout_seconds=2
    )
    with pytest.raises(CredentialsError) as err:
        resource.fetch()
    assert "http://127.0.0.1:9/v2/export/credentials" in str(err.value) and "SECRET" not in str(err.value)


def test_default_settings_are_the_embedded_default(tmp_path):
    s = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path)})
    assert (s.source, s.warehouse) == ("local", "duckdb")
    assert s.duckdb_path == tmp_path / "warehouse.duckdb"


def test_pat_switches_the_source_to_s3_and_gcp_project_to_bigquery():
    s = Settings.from_env(
        {"OPTIMIZELY_PAT": "x", "OPTIMIZELY_GCP_PROJECT": "p", "OPTIMIZELY_GCS_BUCKET": "b"}
    )
    assert (s.source, s.warehouse, s.gcs_bucket) == ("s3", "bigquery", "b")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPTIMIZELY_GCP_PROJECT": "p"}, "OPTIMIZELY_GCS_BUCKET"),
        ({"OPTIMIZELY_GCS_BUCKET": "b"}, "OPTIMIZELY_GCP_PROJECT"),
        ({"OPTIMIZELY_SOURCE": "s3"}, "OPTIMIZELY_ACCOUNT_ID"),
        ({"OPTIMIZELY_SOURCE": "ftp"}, "OPTIMIZELY_SOURCE"),
        ({"OPTIMIZELY_START_DATE": "2024-31-01"}, "OPTIMIZELY_START_DATE"),
        ({"OPTIMIZELY_ACCOUNT_ID": "12ab"}, "OPTIMIZELY_ACCOUNT_ID"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)
