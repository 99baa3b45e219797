"""Copy throughput per worker: the project's S3 -> GCS staging stream vs a plain byte copy.

S3 is a moto server and GCS the gcp-storage-emulator, each in its own process on 127.0.0.1.
Both contenders copy the same objects with 1, 4 and 8 workers:
- project: ``staging_copy.stage_day`` (streamed, resumable uploads, source key and ETag kept);
- limit: ``get_object`` read whole, then one ``upload_from_string`` per object.
Loopback servers measure the worker's own cost (CPU, copies, HTTP), not a network link.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DAY = dt.date(2024, 5, 1)


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str) -> None:
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def bench_copy(work: Path, mb: int = 256, workers: tuple[int, ...] = (1, 4, 8), rounds: int = 3) -> dict:
    import boto3
    from dagster_aws.s3 import S3Resource
    from dagster_gcp import GCSResource
    from google.cloud import storage

    from optimizely_assets.demo.synthetic import ExportSpec, write_export
    from optimizely_assets.e3.layout import ExportType
    from optimizely_assets.loading.manifest import build_manifest
    from optimizely_assets.loading.staging_copy import stage_day
    from optimizely_assets.resources.gcs_staging import GCSStaging
    from optimizely_assets.resources.s3_source import S3ExportSource

    s3_port, gcs_port = _port(), _port()
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [
                str(bin_dir / "gcp-storage-emulator"),
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(gcs_port),
                "--in-memory",
            ],
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        ),
    ]
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{gcs_port}"
    try:
        s3_url = f"http://127.0.0.1:{s3_port}"
        _wait(s3_url)
        _wait(f"http://127.0.0.1:{gcs_port}")
        rows = int(mb * 1e6 / 65 / 2)
        local = work / "copy_source"
        write_export(local, [DAY], ExportSpec(decisions_per_day=rows, events_per_day=10, files_per_day=64))
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
        s3.create_bucket(Bucket="optimizely-events-data")
        for p in local.rglob("*"):
            if p.is_file():
                s3.upload_file(str(p), "optimizely-events-data", p.relative_to(local).as_posix())
        gcs = storage.Client(project="bench")
        source = S3ExportSource(
            s3=S3Resource(endpoint_url=s3_url, region_name="us-east-1"), account_id="5935064"
        )
        manifest = build_manifest(source, ExportType.DECISIONS, DAY)
        total = sum(f.size for f in manifest.files)
        out: dict = {"objects": len(manifest.files), "mb": round(total / 1e6, 1)}
        for w in workers:
            times: dict[str, list[float]] = {"project": [], "limit": []}
            for r in range(rounds):
                for name in ["project", "limit"] if r % 2 == 0 else ["limit", "project"]:
                    bucket = f"stage-{name}-{w}-{r}"
                    gcs.create_bucket(bucket)
                    t = time.perf_counter()
                    if name == "project":
                        staging = GCSStaging(gcs=GCSResource(project="bench"), bucket=bucket)
                        stage_day(source, staging, manifest, workers=w)
                    else:
                        target = gcs.bucket(bucket)

                        def plain(key: str, target=target) -> None:
                            body = s3.get_object(Bucket="optimizely-events-data", Key=key)["Body"].read()
                            target.blob(key).upload_from_string(body)

                        with ThreadPoolExecutor(w) as pool:
                            list(pool.map(plain, [f.key for f in manifest.files]))
                    times[name].append(time.perf_counter() - t)
            p, lim = statistics.median(times["project"]), statistics.median(times["limit"])
            out[w] = {
                "project_mb_s": round(total / 1e6 / p, 1),
                "limit_mb_s": round(total / 1e6 / lim, 1),
                "ratio": round(lim / p, 2),
            }
        return out
    finally:
        for proc in procs:
            proc.terminate()
        shutil.rmtree(work / "copy_source", ignore_errors=True)


def report(r: dict) -> None:
    print(
        f"copy S3 -> GCS staging, {r['objects']} objects, {r['mb']} MB (moto and GCS emulator on loopback):"
    )
    for w in (1, 4, 8):
        if w in r:
            x = r[w]
            print(
                f"  {w} worker(s): project {x['project_mb_s']} MB/s, plain byte copy {x['limit_mb_s']} MB/s, "
                f"= {x['ratio']}x the limit"
            )
