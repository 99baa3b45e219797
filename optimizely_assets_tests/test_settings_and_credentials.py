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
    with pytest.raises(CredentialsError, match="already expired at 2020-06-01"):
        parse_credentials_response(DOCUMENTED)  # the documented sample's expiration is in 2020
    future = {**DOCUMENTED, "credentials": {**DOCUMENTED["credentials"], "expiration": 4_102_444_800_000}}
    creds = parse_credentials_response(future)
    assert (creds.bucket, creds.prefix, creds.account_id) == (
        "optimizely-events-data",
        "v1/account_id=123",
        "123",
    )
    assert creds.expiration.isoformat() == "2100-01-01T00:00:00+00:00"
    assert "access_secret_key" not in repr(creds) and "session_token" not in repr(creds)


@pytest.mark.parametrize("missing", ["accessKeyId", "secretAccessKey", "sessionToken", "expiration"])
def test_response_missing_a_field_is_rejected_by_name(missing):
    body = {
        "credentials": {
            k: v
            for k, v in {**DOCUMENTED["credentials"], "expiration": 4_102_444_800_000}.items()
            if k != missing
        },
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


@pytest.mark.parametrize("env", [{}, {"OPTIMIZELY_PAT": "x"}])
@pytest.mark.parametrize("value", ["2h", "10m", "1d", "soon"])
def test_a_bad_credentials_duration_is_refused_by_name_with_or_without_a_pat(env, value):
    with pytest.raises(SettingsError, match="OPTIMIZELY_CREDENTIALS_DURATION"):
        Settings.from_env({**env, "OPTIMIZELY_CREDENTIALS_DURATION": value})


@pytest.fixture
def api():
    from optimizely_assets_tests.servers import FakeOptimizelyAPI

    server = FakeOptimizelyAPI(token="pat-2:abcSECRET", s3_path="s3://bucket/v1/account_id=123/").start()
    yield server
    server.stop()


def _resource(api, **kw) -> OptimizelyCredentialsResource:
    return OptimizelyCredentialsResource(
        personal_access_token=kw.pop("token", api.token), api_url=api.url, **kw
    )


@pytest.mark.parametrize("statuses", [[503], [500, 502], [429, 429, 503]])
def test_transient_answers_are_retried(api, statuses):
    api.statuses = list(statuses)
    assert _resource(api).fetch().account_id == "123"
    assert len(api.calls) == len(statuses) + 1


def test_a_server_error_that_persists_fails_naming_the_api_and_status(api):
    api.statuses = [503] * 10
    with pytest.raises(
        CredentialsError,
        match=r"credentials API at http://127\.0\.0\.1:\d+/v2/export/credentials answered HTTP 503",
    ):
        _resource(api, attempts=3).fetch()
    assert len(api.calls) == 3


def test_a_trickling_server_cannot_hold_the_call_past_its_deadline(api):
    api.trickle_seconds = 20.0  # one byte every 20 s: each read is "in time", the answer never is
    with pytest.raises(CredentialsError, match="no complete answer within 2 s"):
        _resource(api, timeout_seconds=2).fetch()


def test_a_token_with_a_trailing_newline_works_and_one_with_inner_whitespace_is_named(api):
    assert _resource(api, token=api.token + "\n").fetch().account_id == "123"
    with pytest.raises(CredentialsError, match="OPTIMIZELY_PAT .*whitespace") as err:
        _resource(api, token="pat-2:abc SECRET").fetch()
    assert "SECRET" not in str(err.value)


@pytest.mark.parametrize(
    ("expiration", "message"),
    [(1_500_000_000_000, "already expired"), (2_000_000_000, "reads as seconds")],
)
def test_expired_or_second_based_expirations_fail_at_the_api_not_later_in_botocore(api, expiration, message):
    api.expiration_ms = expiration
    with pytest.raises(CredentialsError, match=message):
        _resource(api).fetch()


def test_the_embedded_defaults_partitions_start_at_its_first_exported_day(tmp_path):
    """The UI's "Materialize all" is the days there are, not 30 with 27 failing for no _SUCCESS."""
    import datetime as dt

    from optimizely_assets.definitions import build_definitions
    from optimizely_assets.demo.synthetic import date_range, write_export
    from optimizely_assets_tests.conftest import SMALL

    empty = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "none")})
    thirty_back = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=30)
    assert empty.start_date == thirty_back.isoformat()
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    days = date_range(yesterday - dt.timedelta(days=2), 3)
    write_export(tmp_path / "demo" / "source", days, SMALL)
    settings = Settings.from_env({"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "demo")})
    assert settings.start_date == days[0].isoformat()
    job = build_definitions(settings).resolve_job_def("optimizely_daily")
    assert job.partitions_def.get_partition_keys() == [d.isoformat() for d in days]
    # Set, it wins.
    assert (
        Settings.from_env(
            {"OPTIMIZELY_LOCAL_DIR": str(tmp_path / "demo"), "OPTIMIZELY_START_DATE": "2024-01-01"}
        ).start_date
        == "2024-01-01"
    )
