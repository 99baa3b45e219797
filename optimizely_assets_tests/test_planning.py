"""`plan-backfill`: its arithmetic on a generated export, and the quota warning."""

from __future__ import annotations

import datetime as dt

import pytest

from optimizely_assets.cli import main
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.planning import (
    PARTITION_MODIFICATIONS_PER_DAY,
    QUOTA_HEADROOM,
    DayListing,
    list_days,
    plan,
)
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets_tests.conftest import SMALL, START


def test_the_listing_counts_every_data_file_and_byte_and_reads_no_footer(tmp_path):
    root = tmp_path / "source"
    days = date_range(START, 3)
    written = write_export(
        root, days, ExportSpec(decisions_per_day=2_000, events_per_day=1_000, files_per_day=30)
    )
    source = LocalExportSource(root_dir=str(root), account_id=SMALL.account_id)
    listings = list_days(source, ExportType, [*days, START + dt.timedelta(days=3)])  # one day not exported
    for w in written:
        (x,) = [x for x in listings if x.export_type is w.export_type and x.day == w.day]
        assert x.files == len(w.files)
        assert x.bytes == sum((root / k).stat().st_size for k in w.files)
    p = plan(listings, parallel_runs=2, copy_mb_per_s=1.0, run_overhead_s=10.0)
    assert p.days == 4 and p.files == sum(len(w.files) for w in written)
    assert p.load_jobs_per_table == {"decisions_raw": 3, "events_raw": 3}  # none for the empty day
    mean_day = p.bytes / 4
    assert p.run_seconds == pytest.approx(mean_day / 1e6 + 10.0)
    assert p.wall_seconds == pytest.approx(2 * p.run_seconds)  # 4 days, 2 at a time
    assert p.egress_bytes == p.bytes and not p.warnings


def _years(n_days: int, gb_per_day: float) -> list[DayListing]:
    days = date_range(dt.date(2023, 1, 1), n_days)
    return [DayListing(t, d, 400, int(gb_per_day * 1e9 / 2)) for d in days for t in ExportType]


def test_too_many_parallel_runs_for_the_load_job_quota_warn_and_propose_a_pacing():
    ok = plan(_years(3 * 365, 5), parallel_runs=4, copy_mb_per_s=50, run_overhead_s=30)
    assert not ok.warnings
    fast = plan(_years(15 * 365, 5), parallel_runs=32, copy_mb_per_s=50, run_overhead_s=30)
    allowed = PARTITION_MODIFICATIONS_PER_DAY * QUOTA_HEADROOM
    assert fast.days_per_24h > allowed
    (warning,) = fast.warnings
    assert (
        "partition modifications per ingestion-time partitioned table per day" in warning
        and f"max_concurrent_runs: {fast.max_parallel_runs_for_quota}" in warning
    )
    # The proposed pacing itself keeps under the quota, and one more run would not.
    paced = plan(_years(15 * 365, 5), fast.max_parallel_runs_for_quota, copy_mb_per_s=50, run_overhead_s=30)
    assert not paced.warnings and paced.days_per_24h <= allowed
    assert plan(_years(15 * 365, 5), fast.max_parallel_runs_for_quota + 1, 50, 30).warnings


def test_days_so_small_that_one_run_is_too_fast_are_paced_in_ranges():
    tiny = plan(_years(15 * 365, 0.01), parallel_runs=1, copy_mb_per_s=50, run_overhead_s=5)
    assert tiny.max_parallel_runs_for_quota == 0
    (warning,) = tiny.warnings
    assert "ranges of at most 4,000 days, 24 h apart (2023-01-01..2033-12-13" in warning


def test_the_cli_plans_offline_on_the_embedded_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(tmp_path / "local"))
    write_export(tmp_path / "local" / "source", date_range(START, 2), SMALL)
    assert (
        main(["plan-backfill", "--start", "2024-01-01", "--end", "2024-01-02", "--parallel-runs", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "days: 2" in out and "decisions_raw 2, events_raw 2" in out and "AWS egress" in out
    assert main(["plan-backfill", "--start", "2024-01-02", "--end", "2024-01-01"]) == 2
    assert "before --start" in capsys.readouterr().err
