"""The real Dagster UI (webserver + daemon from `dagster dev`) driven in headless Chromium.

A user materializes a partition range from the job page; the daemon runs the backfill one day
per run; the Runs page and the asset's Checks tab show the outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "dagster_home"
    # As `make dev` lays it out: the repo's dagster.yaml linked in, no first-visit modal.
    (home / ".nux").mkdir(parents=True)
    (home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    local = tmp_path / "local"
    write_export(local / "source", date_range(START, 3), SMALL)
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "OPTIMIZELY_LOCAL_DIR": str(local),
        "OPTIMIZELY_START_DATE": START.isoformat(),
    }
    log = open(tmp_path / "dagster_dev.log", "wb")
    # `make dev`'s command: dg dev from the Dagster home, on the repo's workspace.yaml.
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dg"),
            "dev",
            "-w",
            str(REPO / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=home,
        env={**env, "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((tmp_path / "dagster_dev.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, home, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.ui
def test_materialize_a_partition_range_from_the_ui(dagster_dev):
    from playwright.sync_api import expect, sync_playwright

    url, home, tmp_path = dagster_dev
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/locations/optimizely_assets/jobs/optimizely_daily", timeout=60_000)
            page.get_by_role("button", name="Materialize all…").click(timeout=60_000)
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Show all partitions").click()
            selector = dialog.locator("input").first
            selector.fill("[2024-01-01...2024-01-03]")
            selector.press("Enter")
            expect(dialog.get_by_text("3 partitions")).to_be_visible()
            dialog.get_by_role("button", name="Launch backfill").click()
            expect(page.get_by_text("Created backfill")).to_be_visible(timeout=30_000)

            # The daemon launches one run per day (backfill policy); wait for them to finish.
            os.environ["DAGSTER_HOME"] = str(home)
            with DagsterInstance.get() as instance:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    runs = instance.get_runs()
                    done = [r for r in runs if r.is_finished]
                    if len(runs) == 3 and len(done) == 3:
                        break
                    time.sleep(2)
                runs = instance.get_runs()
                assert sorted(r.tags.get("dagster/partition") for r in runs) == [
                    "2024-01-01",
                    "2024-01-02",
                    "2024-01-03",
                ]
                assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}, (
                    tmp_path / "dagster_dev.log"
                ).read_text()[-3000:]
                assert len(instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))) == 3

            page.goto(f"{url}/runs")
            expect(page.get_by_text("3 partitions").first).to_be_visible(timeout=30_000)
            page.get_by_text("Show runs within backfills").click()
            expect(page.get_by_text("Success", exact=True)).to_have_count(3, timeout=30_000)

            page.goto(f"{url}/assets/decisions/raw_table?view=checks")
            expect(page.get_by_text("rows_match_source_footers").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Passed").first).to_be_visible(timeout=30_000)
            shots = os.environ.get("OPTIMIZELY_SCREENSHOTS")  # for reviews: the pages people look at
            if shots:
                page.screenshot(path=f"{shots}/checks.png")
                for name, path in (("asset", "assets/decisions/canonical"), ("lineage", "asset-groups")):
                    page.goto(f"{url}/{path}")
                    page.wait_for_timeout(4000)
                    page.screenshot(path=f"{shots}/{name}.png")
            log = (tmp_path / "dagster_dev.log").read_text()
            assert (
                "Found a dagster instance configuration" not in log
            )  # the dagster.yaml in use is the one read
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()
