"""Kill the run (SIGKILL, a real process) during copy, load or merge; re-run; nothing lost or doubled."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
from dagster import DagsterInstance

from optimizely_assets.demo.synthetic import date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets_tests.conftest import SMALL, START, rows_of
from optimizely_assets_tests.helpers import all_clean, local_settings, query, run_day, table_counts

DAYS = date_range(START, 2)


def crash(local_dir, day, point) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "optimizely_assets_tests.crash_run", str(local_dir), day.isoformat(), point],
        capture_output=True,
        timeout=300,
    )
    return proc.returncode


def expected_counts(written) -> dict[str, tuple[int, int]]:
    out = {}
    for t in ExportType:
        ws = [w for w in written if w.export_type is t]
        raw_distinct = len(set().union(*(w.unique_uuids for w in ws)))
        out[f"{t.value}_raw"] = (sum(w.rows for w in ws), raw_distinct)
        out[t.value] = (raw_distinct, raw_distinct)
    return out


@pytest.mark.parametrize("point", ["copy", "load", "merge"])
def test_killed_mid_stage_then_rerun_loses_and_doubles_nothing(tmp_path, point):
    local = tmp_path / "local"
    settings = local_settings(local)
    written = write_export(settings.local_source_dir, DAYS, SMALL)
    instance = DagsterInstance.ephemeral()
    assert run_day(settings, DAYS[0], instance).success
    before = table_counts(settings)

    assert crash(local, DAYS[1], point) == -9  # SIGKILL: no handler, no cleanup ran

    after_crash = table_counts(settings)
    if point in ("copy", "load"):
        assert after_crash["decisions_raw"] == before["decisions_raw"]  # the day is untouched
    assert after_crash["decisions"] == before["decisions"]  # an open MERGE never half-applies

    result = run_day(settings, DAYS[1], instance)
    assert result.success and all_clean(result)
    assert table_counts(settings) == expected_counts(written)


def test_killed_at_random_moments_then_rerun_converges(tmp_path):
    local = tmp_path / "local"
    settings = local_settings(local)
    written = write_export(settings.local_source_dir, DAYS, SMALL)
    rng = random.Random(20261122)
    for _ in range(3):
        for day in DAYS:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "optimizely_assets_tests.crash_run",
                    str(local),
                    day.isoformat(),
                    "none",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(1.0, 6.0))
            proc.kill()
            proc.wait()
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        result = run_day(settings, day, instance)
        assert result.success and all_clean(result)
    assert table_counts(settings) == expected_counts(written)
    for t in ExportType:
        n = query(settings, f"SELECT count(*) FROM {t.value}_raw WHERE export_date = ?", [DAYS[1]])[0][0]
        assert n == rows_of(written, t, DAYS[1]).rows
