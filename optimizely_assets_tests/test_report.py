"""`results --experiment` and `report`: the demo's stories in the terminal, and a page Chromium draws."""

from __future__ import annotations

import datetime as dt
import random
import re
import struct
import zlib
from pathlib import Path

import pytest

from optimizely_assets import cli
from optimizely_assets.analysis.inference import Sums
from optimizely_assets.analysis.metrics import cumulative, experiment_metrics
from optimizely_assets.demo.experiments import EFFECT_EXPERIMENT, NO_EFFECT_EXPERIMENT
from optimizely_assets.warehouse.analysis import MetricSums
from optimizely_assets_tests.helpers import local_settings, query
from optimizely_assets_tests.test_ui import CHROMIUM, CHROMIUM_ARGS

SIGNIFICANT_UP = (0x1A, 0x7F, 0x37)  # html_report.COLOURS[2]: a filled, significant positive lift


def daily_sums(seed: int, days: int = 6) -> dict[dt.date, list[MetricSums]]:
    rng = random.Random(seed)
    out: dict[dt.date, list[MetricSums]] = {}
    for d in range(days):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=d)
        for v, rate in (("a", 0.10), ("b", 0.13)):
            n = rng.randint(200, 400)
            k = sum(rng.random() < rate for _ in range(n))
            out.setdefault(day, []).append(MetricSums("e", v, "buy", "conversion", Sums(n, k, k)))
    return out


def test_the_cumulative_lift_ends_at_the_tables_figure_whatever_order_the_days_come_in():
    daily = daily_sums(1)
    series = cumulative(daily)[("buy", "conversion", "b")]
    assert [p.day for p in series] == sorted(daily)
    assert [p.units for p in series] == sorted(p.units for p in series)  # units only add up
    totals = {}
    for sums in daily.values():
        for s in sums:
            t = totals.get(s.variation_id, Sums(0, 0, 0))
            totals[s.variation_id] = Sums(
                t.n + s.sums.n, t.sum + s.sums.sum, t.sum_squares + s.sums.sum_squares
            )
    (table,) = [
        r
        for r in experiment_metrics([MetricSums("e", v, "buy", "conversion", t) for v, t in totals.items()])
        if r.variation_id == "b"
    ]
    assert (series[-1].lift, series[-1].seq_ci_low, series[-1].seq_ci_high) == pytest.approx(
        (table.lift, table.seq_ci_low, table.seq_ci_high), rel=1e-12
    )
    reverse = dict(sorted(daily.items(), reverse=True))
    assert cumulative(reverse) == cumulative(daily)


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6) and body[12] == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if colour == 6 else 3
    raw, stride, prev, pixels = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for row in range(height):
        kind, line = (
            raw[row * (stride + 1)],
            bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, bpp)]
        prev = line
    return width, height, pixels


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel, colour, strict=True))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Three demo days loaded on the embedded default (what `make demo` does)."""
    local = tmp_path_factory.mktemp("report") / "local"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPTIMIZELY_LOCAL_DIR", str(local))
        mp.setenv("OPTIMIZELY_START_DATE", "2024-01-01")
        mp.delenv("DAGSTER_HOME", raising=False)
        assert cli.main(["demo", "--start", "2024-01-01", "--days", "3"]) == 0
    return local


@pytest.fixture
def env(demo, monkeypatch) -> Path:
    monkeypatch.setenv("OPTIMIZELY_LOCAL_DIR", str(demo))
    monkeypatch.setenv("OPTIMIZELY_START_DATE", "2024-01-01")
    return demo


def purchase_conversion_line(out: str) -> str:
    (line,) = [x for x in out.splitlines() if re.match(r"purchase\s+conversion\s+treatment\s", x)]
    return line


def test_results_mark_the_effect_significant_and_the_no_effect_experiment_not(env, capsys):
    assert cli.main(["results", "--experiment", EFFECT_EXPERIMENT]) == 0
    out = capsys.readouterr().out
    assert "Checkout button colour" in out and "against control" in out
    line = purchase_conversion_line(out)
    assert line.endswith("*")  # significant after FDR
    lift, lo, hi = (float(x) for x in re.findall(r"([+-]\d+\.\d)%", line)[:3])
    assert 0 < lo < lift < hi
    assert re.search(r"purchase\s+conversion\s+control \(baseline\)", out)
    assert cli.main(["results", "--experiment", NO_EFFECT_EXPERIMENT]) == 0
    line = purchase_conversion_line(capsys.readouterr().out)
    assert not line.endswith("*")
    lo, hi = (float(x) for x in re.findall(r"([+-]\d+\.\d)%", line)[1:3])
    assert lo < 0 < hi


def test_cuped_narrows_the_demos_count_intervals(env):
    """The generator gives visitors an activity that holds before and after exposure."""
    ((ratio, rows),) = query(
        local_settings(env),
        "SELECT avg((cuped_ci_high - cuped_ci_low) / (ci_high - ci_low)), count(*) FROM experiment_metrics "
        "WHERE metric = 'count' AND ci_low IS NOT NULL AND cuped_ci_low IS NOT NULL",
    )
    assert rows > 10 and ratio < 0.9


def test_the_report_is_one_offline_file_chromium_draws(env, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "nested" / "report.html"
    assert cli.main(["report", "--experiment", EFFECT_EXPERIMENT, "--out", str(out)]) == 0
    page_text = out.read_text(encoding="utf-8")
    assert "<script" not in page_text and not re.search(r"(src|href)=|url\((?!#)|@import", page_text)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--offline"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        try:
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            assert requests == [out.as_uri()]  # nothing fetched beyond the file itself
            forests = page.locator("svg.forest")
            assert forests.count() == 3  # conversion, count, revenue
            conversion = page.locator('svg.forest[data-metric="conversion"]')
            assert conversion.locator("circle.point").count() >= 7  # one per event with inference
            box = conversion.bounding_box()
            assert box and box["width"] > 600 and box["height"] > 150
            width, height, pixels = png_pixels(conversion.screenshot())
            assert (width, height) == (round(box["width"]), round(box["height"]))
            assert sum(near(p, SIGNIFICANT_UP) for p in pixels) > 200  # the purchase row, drawn
            charts = page.locator('svg.cumulative[data-metric="conversion"]')
            assert charts.count() >= 7
            purchase = page.locator('svg.cumulative[data-metric="conversion"][data-event="purchase"]')
            assert purchase.locator("polyline.lift").count() == 1
            _, _, pixels = png_pixels(purchase.screenshot())
            blue = sum(near(p, (0x1F, 0x6F, 0xEB), 30) for p in pixels)  # the lift line
            band = sum(near(p, (0xDA, 0xE6, 0xFC), 14) for p in pixels)  # its 18% band on white
            assert blue > 100 and band > 1000, (blue, band)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert (tmp_path / "report.png").stat().st_size > 20_000
        finally:
            browser.close()
