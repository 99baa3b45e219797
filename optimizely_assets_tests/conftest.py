from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from optimizely_assets.demo.synthetic import ExportSpec, WrittenDay, date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets_tests.servers import FakeOptimizelyAPI, free_port

# Nothing here may reach a real cloud: fake keys, loopback endpoints only.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for var in ("OPTIMIZELY_PAT", "OPTIMIZELY_GCP_PROJECT", "OPTIMIZELY_GCS_BUCKET", "OPTIMIZELY_SOURCE"):
    os.environ.pop(var, None)

START = dt.date(2024, 1, 1)
SMALL = ExportSpec(decisions_per_day=1_500, events_per_day=2_000, cross_day_duplicates=20)


@pytest.fixture
def export_dir(tmp_path: Path) -> tuple[Path, list[WrittenDay]]:
    """Three generated days under ``tmp_path/source``."""
    root = tmp_path / "source"
    written = write_export(root, date_range(START, 3), SMALL)
    return root, written


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[str]:
    """A fresh, empty bucket on the moto server."""
    import uuid

    name = f"optimizely-events-data-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    yield name


def upload_tree(endpoint: str, bucket: str, root: Path) -> int:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    n = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, path.relative_to(root).as_posix())
            n += 1
    return n


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    data_dir = tmp_path_factory.mktemp("gcs")
    server = create_server("127.0.0.1", port, in_memory=False, data_dir=str(data_dir))
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def optimizely_api(s3_bucket: str) -> Iterator[FakeOptimizelyAPI]:
    api = FakeOptimizelyAPI(
        token="pat-2:0123456789abcdefSECRET", s3_path=f"s3://{s3_bucket}/v1/account_id={SMALL.account_id}/"
    ).start()
    yield api
    api.stop()


def rows_of(written: list[WrittenDay], export_type: ExportType, day: dt.date) -> WrittenDay:
    return next(w for w in written if w.export_type is export_type and w.day == day)
