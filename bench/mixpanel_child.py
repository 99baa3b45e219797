"""One measured process of bench/mixpanel_feed.py: the feed of a day, or the day read whole."""

from __future__ import annotations

import datetime as dt
import sys
import time

from optimizely_assets.e3.layout import ExportType
from optimizely_assets.mixpanel.feed import feed_day, stream
from optimizely_assets.mixpanel.import_api import MixpanelImport
from optimizely_assets.mixpanel.mapping import DEFAULTS
from optimizely_assets.warehouse import mixpanel_sql as sql
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

if __name__ == "__main__":
    mode, path, day, url = sys.argv[1:5]
    wh = DuckDBWarehouse(path=path)
    text = sql.day_rows(wh.ref, ExportType.EVENTS, dt.date.fromisoformat(day))
    started = time.perf_counter()
    if mode == "whole":
        with wh.connect(read_only=True) as con:
            table = con.execute(text).fetch_arrow_table()
        print(f"rows={table.num_rows}")
    else:
        api = MixpanelImport(project_id="4242", username="sa.bench", secret="s3cret", api_host=url)
        feed = feed_day(stream(wh, text), DEFAULTS[ExportType.EVENTS], api)
        print(f"rows={feed.rows}")
        print(f"requests={feed.result.requests}")
        print(f"rejected={feed.rejected}")
        print(f"json_mb={feed.json_bytes / 1024 / 1024:.1f}")
    print(f"seconds={time.perf_counter() - started:.3f}")
