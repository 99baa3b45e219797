"""The Mixpanel feed against a stand-in of the Import API on 127.0.0.1 (mixpanel_standin.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType, account_prefix, day_prefix
from optimizely_assets.mixpanel import import_api
from optimizely_assets.mixpanel.import_api import MixpanelError, MixpanelImport, encode
from optimizely_assets.mixpanel.mapping import MappingError, insert_id, load_mapping
from optimizely_assets.settings import Settings, SettingsError
from optimizely_assets_tests.conftest import SMALL
from optimizely_assets_tests.helpers import local_settings, query, run_day
from optimizely_assets_tests.mixpanel_standin import MixpanelStandIn

START = dt.date(2024, 1, 1)


@pytest.fixture
def standin():
    server = MixpanelStandIn()
    yield server
    server.stop()


def settings_for(tmp_path: Path, standin: MixpanelStandIn, monkeypatch, **env: str) -> Settings:
    monkeypatch.setenv("MIXPANEL_SERVICE_ACCOUNT_SECRET", standin.secret)
    return local_settings(
        tmp_path / "local",
        MIXPANEL_PROJECT_ID=standin.project_id,
        MIXPANEL_SERVICE_ACCOUNT_USERNAME=standin.username,
        MIXPANEL_SERVICE_ACCOUNT_SECRET=standin.secret,
        MIXPANEL_API_HOST=standin.url,
        **env,
    )


def api(standin: MixpanelStandIn, **kw) -> MixpanelImport:
    return MixpanelImport(
        project_id=standin.project_id,
        username=standin.username,
        secret=standin.secret,
        api_host=standin.url,
        **kw,
    )


def events(n: int, start: int = 0) -> tuple[list[bytes], list[str]]:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(start, start + n)]
    out = [
        encode(
            {
                "event": "e",
                "properties": {"distinct_id": f"v{i}", "time": 1_700_000_000_000, "$insert_id": iid},
            }
        )
        for i, iid in enumerate(ids)
    ]
    return out, ids


def test_settings_turn_the_feed_on_only_when_complete_and_name_what_is_missing(tmp_path):
    base = {"OPTIMIZELY_LOCAL_DIR": str(tmp_path)}
    assert Settings.from_env(base).mixpanel is None
    with pytest.raises(
        SettingsError, match="needs MIXPANEL_SERVICE_ACCOUNT_USERNAME, MIXPANEL_SERVICE_ACCOUNT_SECRET"
    ):
        Settings.from_env({**base, "MIXPANEL_PROJECT_ID": "1"})
    full = {
        **base,
        "MIXPANEL_PROJECT_ID": "1",
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME": "u",
        "MIXPANEL_SERVICE_ACCOUNT_SECRET": "s",
    }
    assert Settings.from_env(full).mixpanel.api_host == "https://api.mixpanel.com"
    assert (
        Settings.from_env({**full, "MIXPANEL_API_HOST": "eu"}).mixpanel.api_host
        == "https://api-eu.mixpanel.com"
    )
    with pytest.raises(SettingsError, match="MIXPANEL_API_HOST"):
        Settings.from_env({**full, "MIXPANEL_API_HOST": "http://example.com"})


def test_insert_ids_are_the_uuid_when_it_fits_and_a_stable_hash_when_not():
    uuid = "3f0b8a8e-5d1c-4a7e-9c36-1b2d3e4f5a6b"
    assert insert_id(uuid) == uuid and insert_id(uuid.upper()) == uuid.upper()
    odd = "event:42/with spaces and a long tail that exceeds thirty-six characters"
    assert (
        insert_id(odd) == insert_id(odd)
        and len(insert_id(odd)) == 36
        and insert_id(odd) != insert_id(odd + "x")
    )
    assert insert_id(odd).replace("-", "").isalnum()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("decisions:\n  renam: {a: b}\n", "decisions.renam: unknown rule"),
        ("events:\n  include: [revenue, colour]\n", "events.include: colour not a column of events"),
        ("events:\n  event: '{nme}'\n", "events.event: {nme} is not a column"),
        ("decisions:\n  attributes: explode\n", "decisions.attributes: 'explode' is not one of"),
        (
            "events:\n  rename: {visitor_id: distinct_id}\n",
            "events.rename.visitor_id: 'distinct_id' is set by the feed",
        ),
        ("profiles: {}\n", "profiles: unknown section"),
        ("events: [1, 2\n", "not valid yaml"),
    ],
)
def test_a_mapping_error_names_the_rule(tmp_path, text, says):
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    with pytest.raises(MappingError, match=says.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        load_mapping(path)


def test_a_batch_is_gzip_retried_on_429_honouring_retry_after_and_split_on_413(standin, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(import_api.time, "sleep", waits.append)
    standin.throttle, standin.retry_after = 3, "2"
    encoded, ids = events(50)
    sent = api(standin).send(encoded, ids)
    assert sent.accepted == 50 and sent.retried_batches == 1 and sent.requests == 4
    assert waits == [2.0, 2.0, 2.0] and all(r["gzip"] for r in standin.requests)
    standin.max_bytes = 2_000  # each request over it is split until it fits
    sent = api(standin).send(*events(40, start=100))
    assert sent.accepted == 40 and sent.split_batches > 0 and len(standin.imported) == 90
    standin.fail_5xx = 10
    with pytest.raises(MixpanelError, match="HTTP 503 after 3 tries"):
        api(standin, attempts=3).send(*events(2, start=500))
    with pytest.raises(MixpanelError) as bad:
        MixpanelImport(
            project_id=standin.project_id, username="sa.feed", secret="wrong-secret", api_host=standin.url
        ).send(*events(1))
    assert "401" in str(bad.value) and "wrong-secret" not in str(bad.value)


def make_day(settings: Settings, broken_times: int = 0) -> None:
    write_export(settings.local_source_dir, [START], SMALL)
    if broken_times:  # rows whose client clock says 1970: Mixpanel refuses times before 1971
        prefix = settings.local_source_dir / day_prefix(
            account_prefix(SMALL.account_id), ExportType.EVENTS, START
        )
        path = sorted(prefix.rglob("*.parquet"))[0]
        table = pq.read_table(path)
        ts = table.column("timestamp").to_pylist()
        old = dt.datetime(1970, 1, 2, tzinfo=dt.timezone.utc)
        column = pa.array([old] * broken_times + ts[broken_times:], table.schema.field("timestamp").type)
        write_parquet(table.set_column(1, "timestamp", column), path, flavor=SMALL.flavor)


def test_a_day_reaches_mixpanel_once_with_names_and_a_rerun_sends_the_same_insert_ids(
    tmp_path, standin, monkeypatch
):
    settings = settings_for(tmp_path, standin, monkeypatch)
    make_day(settings)
    instance = DagsterInstance.ephemeral()
    result = run_day(settings, START, instance)
    assert result.success
    meta = {
        t.value: result.asset_materializations_for_node(f"mixpanel__{t.value}")[0].metadata
        for t in ExportType
    }
    checks = {
        (e.asset_key.path[-1], e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[0] == "mixpanel"
    }
    for t in ExportType:
        (canonical,) = query(settings, f"SELECT count(*) FROM {t.value} WHERE export_date = ?", [START])[0]
        assert meta[t.value]["accepted"].value == canonical and meta[t.value]["rejected"].value == 0
        assert checks[(t.value, "rows_accounted_for")].passed and checks[(t.value, "rejected_records")].passed
    first = dict(standin.imported)
    names = {e["event"] for e in first.values()}
    assert "$experiment_started" in names and "purchase" in names
    started = next(e for e in first.values() if e["event"] == "$experiment_started")["properties"]
    assert {
        "Experiment name",
        "Variant name",
        "experiment_id",
        "variation_id",
        "campaign_id",
        "is_holdback",
    } <= set(started)
    assert any(e["properties"].get("Experiment name") == "Checkout button colour" for e in first.values())
    sent_before = sum(r["events"] for r in standin.requests)
    assert run_day(settings, START, instance).success
    assert sum(r["events"] for r in standin.requests) == 2 * sent_before  # sent again ...
    assert standin.imported.keys() == first.keys()  # ... with the same ids: Mixpanel keeps one of each
    logged = json.dumps([str(e) for r in instance.get_runs() for e in instance.all_logs(r.run_id)])
    assert standin.secret not in logged


def test_rejected_rows_reach_the_dead_letter_table_and_a_warn_check_names_the_day(
    tmp_path, standin, monkeypatch
):
    settings = settings_for(tmp_path, standin, monkeypatch)
    make_day(settings, broken_times=7)
    result = run_day(settings, START, DagsterInstance.ephemeral())
    assert result.success
    checks = {
        (e.asset_key.path[-1], e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[0] == "mixpanel"
    }
    warn = checks[("events", "rejected_records")]
    assert (
        not warn.passed
        and warn.severity.value == "WARN"
        and f"events {START}: 7 rows rejected" in warn.description
    )
    assert checks[("events", "rows_accounted_for")].passed
    dead = query(
        settings, "SELECT uuid, insert_id, reason FROM mixpanel_dead_letter WHERE export_type = 'events'"
    )
    assert len(dead) == 7 and all("properties.time" in r[2] for r in dead)
    old = {r[0] for r in query(settings, "SELECT uuid FROM events WHERE timestamp < TIMESTAMP '1971-01-01'")}
    assert {r[0] for r in dead} == old


def test_a_429_storm_is_ridden_out_and_a_mapping_error_sends_nothing(tmp_path, standin, monkeypatch):
    monkeypatch.setattr(import_api.time, "sleep", lambda s: None)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("events:\n  exclude: [user_agent]\n  attributes: nested\n")
    settings = settings_for(tmp_path, standin, monkeypatch, MIXPANEL_MAPPING_FILE=str(mapping))
    make_day(settings)
    standin.throttle = 6
    result = run_day(settings, START, DagsterInstance.ephemeral())
    assert result.success
    retried = sum(
        result.asset_materializations_for_node(f"mixpanel__{t.value}")[0].metadata["retried_batches"].value
        for t in ExportType
    )
    assert retried >= 1 and sum(r["status"] == 429 for r in standin.requests) == 6
    purchase = next(e for e in standin.imported.values() if e["event"] == "purchase")["properties"]
    assert isinstance(purchase["attributes"], dict)
    mapping.write_text("events:\n  include: [revenue, colour]\n")
    before = len(standin.requests)
    failed = run_day(settings, START, DagsterInstance.ephemeral())
    assert not failed.success and len(standin.requests) == before
    # The file is read whole: both types stop, each naming the rule, and nothing was sent.
    errors = [e for e in failed.all_events if e.is_step_failure and "mixpanel" in e.step_key]
    assert {e.step_key for e in errors} == {"mixpanel__decisions", "mixpanel__events"}
    for error in errors:
        chain = error.step_failure_data.error
        while chain.cause is not None:
            chain = chain.cause
        assert "events.include: colour not a column of events" in chain.message


def test_a_bigquery_day_streams_in_result_pages_with_the_same_events(tmp_path, standin):
    """The BigQuery path (bqemulator): result pages as Arrow, tags as ARRAY<STRUCT<key, value>>."""
    from optimizely_assets.mixpanel.feed import feed_day, stream
    from optimizely_assets.mixpanel.mapping import DEFAULTS
    from optimizely_assets.warehouse import mixpanel_sql
    from optimizely_assets_tests.servers import start_bigquery_emulator
    from optimizely_assets_tests.test_bigquery_emulator import EmulatorWarehouse, seed_raw

    gcs_root = tmp_path / "gcs"
    gcs_root.mkdir()
    url, proc = start_bigquery_emulator(tmp_path, gcs_root)
    try:
        wh = EmulatorWarehouse(project="test-project", dataset="mixpanel", api_endpoint=url)
        src = tmp_path / "src"
        write_export(src, [START], SMALL, types=[ExportType.EVENTS])
        seed_raw(
            wh,
            gcs_root,
            ExportType.EVENTS,
            START,
            pa.concat_tables([pq.read_table(f) for f in sorted(src.rglob("*.parquet"))]),
        )
        wh.merge_canonical(ExportType.EVENTS, START, 30)
        text = mixpanel_sql.day_rows(wh.ref, ExportType.EVENTS, START)
        ((rows,),), _ = wh.run_query(mixpanel_sql.day_count(wh.ref, ExportType.EVENTS, START))
        feed = feed_day(stream(wh, text), DEFAULTS[ExportType.EVENTS], api(standin))
        assert feed.rows == rows > 0 and feed.result.accepted == rows and feed.rejected == 0
        tagged = [e["properties"]["tags"] for e in standin.imported.values() if e["properties"].get("tags")]
        assert tagged and all(isinstance(t, dict) for t in tagged)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
