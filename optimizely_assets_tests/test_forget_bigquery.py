"""Forget a visitor on BigQuery (bqemulator) with GCS staging (the GCS emulator): the same code path."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from dagster_gcp import GCSResource

from optimizely_assets.assets.results import rebuild
from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.loading.manifest import build_manifest
from optimizely_assets.loading.staging_copy import stage_day
from optimizely_assets.privacy import forget
from optimizely_assets.privacy.scrub import matcher
from optimizely_assets.privacy.tables import PrivacyTables
from optimizely_assets.privacy.visitors import visitor_hash
from optimizely_assets.resources.gcs_staging import GCSStaging
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets.warehouse import forget_sql
from optimizely_assets.warehouse.analysis_sql import Window
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.servers import start_bigquery_emulator
from optimizely_assets_tests.test_bigquery_emulator import EmulatorWarehouse, seed_raw
from optimizely_assets_tests.test_forget import AGENT, IP, VISITOR, inject

SALT = "test-salt-0123456789abcdef0123456789abcdef"


def staged_bytes(staging: GCSStaging) -> list[bytes]:
    return [
        b.download_as_bytes()
        for b in staging.client.list_blobs(staging.bucket)
        if b.name.endswith(".parquet")
    ]


def counts(tables: PrivacyTables) -> dict[str, int]:
    return {
        t: int(tables.query(forget_sql.count_rows(ref, [VISITOR], True))[0][0])
        for t, ref in tables.visitor_tables.items()
    }


def test_forget_on_bigquery_and_gcs_and_a_later_staging_scrubs_the_copy(tmp_path, gcs_emulator):
    gcs_root = tmp_path / "gcs"
    gcs_root.mkdir()
    url, proc = start_bigquery_emulator(tmp_path, gcs_root)
    try:
        wh = EmulatorWarehouse(project="test-project", dataset="forget", api_endpoint=url)
        staging = GCSStaging(gcs=GCSResource(project="test-project"), bucket=f"stage-{uuid.uuid4().hex[:8]}")
        staging.client.create_bucket(staging.bucket)
        src = tmp_path / "src"
        write_export(src, [START], SMALL)
        injected = {t: inject(src, SMALL, t, START, 6) for t in ExportType}
        source = LocalExportSource(root_dir=str(src), account_id=SMALL.account_id)
        manifests = {}
        for t in ExportType:
            manifests[t] = build_manifest(source, t, START)
            stage_day(source, staging, manifests[t], workers=2)
            files = sorted(src.rglob(f"type={t.value}/**/*.parquet"))
            seed_raw(wh, gcs_root, t, START, pa.concat_tables([pq.read_table(f) for f in files]))
            wh.merge_canonical(t, START, 30)
        tables = PrivacyTables(wh)
        assert tables.forgotten_hashes() == set()  # no table yet: a day stages as before, no DDL
        tables.ensure()
        tables.analysis.write_units(START, Window(48))
        tables.analysis.write_events(START, Window(48))
        present = counts(tables)
        assert all(present[t] > 0 for t in ("decisions_raw", "decisions", "events_raw", "events"))
        assert any(VISITOR.encode() in b for b in staged_bytes(staging))

        # Dry run: rows per table, files, and the bytes each DELETE would bill; nothing changes.
        dry = forget.Outcome()
        for t in ExportType:
            dry.add(forget.forget_type(tables, staging, source.root, t, [VISITOR], True))
        dry.add(forget.forget_analysis(tables, [VISITOR], True))
        assert {t: dry.rows.get(t, 0) for t in present} == present and not dry.errors
        assert dry.files >= 2 and set(dry.bytes_billed) == set(present)
        assert counts(tables) == present

        tables.add_requests([VISITOR], dt.datetime.now(dt.timezone.utc))
        request_id = tables.claim()
        forget.suppress(tables, request_id, tables.ids_of(request_id), SALT)
        outcome = forget.Outcome()
        for t in ExportType:
            outcome.add(forget.forget_type(tables, staging, source.root, t, [VISITOR], False))
        outcome.add(forget.forget_analysis(tables, [VISITOR], False))
        forget.count_left(tables, [VISITOR], outcome)
        forget.finish(tables, request_id, [VISITOR], SALT, outcome, lambda: rebuild(tables.analysis, False))
        assert not outcome.errors and outcome.rows_left == 0
        assert counts(tables) == dict.fromkeys(present, 0)
        assert {k: outcome.rows.get(k, 0) for k in present} == present
        assert not [b for b in staged_bytes(staging) for n in (VISITOR, IP, AGENT) if n.encode() in b]
        ((status, rows),) = tables.query(
            f"SELECT outcome, rows_removed FROM {tables.names['deletion_log']} "
            f"WHERE visitor_hash = '{visitor_hash(SALT, VISITOR)}'"
        )
        assert status == "ok" and json.loads(rows)["events_raw"] == present["events_raw"]
        assert tables.query(f"SELECT COUNT(*) FROM {tables.names['deletion_requests']}")[0][0] == 0
        assert tables.forgotten_hashes() == {visitor_hash(SALT, VISITOR)}

        # Optimizely re-delivers the day: the new copies are scrubbed as they are staged.
        for blob in list(staging.client.list_blobs(staging.bucket)):
            blob.delete()
        for t in ExportType:
            day = stage_day(
                source,
                staging,
                manifests[t],
                workers=2,
                suppress=matcher(hashes={visitor_hash(SALT, VISITOR)}, salt=SALT),
            )
            assert day.suppressed.rows == injected[t]
            assert sum(f.rows for f in day.files) == manifests[t].rows - injected[t]
        assert not [b for b in staged_bytes(staging) if VISITOR.encode() in b]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
