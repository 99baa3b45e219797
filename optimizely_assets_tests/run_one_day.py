"""Run one day's job in this process against $DAGSTER_HOME's instance: one of several concurrent runs.

python -m optimizely_assets_tests.run_one_day <local_dir> <day>
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from dagster import DagsterInstance

from optimizely_assets_tests.helpers import local_settings, run_day

if __name__ == "__main__":
    settings = local_settings(Path(sys.argv[1]))
    result = run_day(settings, dt.date.fromisoformat(sys.argv[2]), DagsterInstance.get())
    sys.exit(0 if result.success else 1)
