"""Optimizely's public E3 sample files (optimizely/labs, reference §2.1), or a rebuild of them.

Set ``OPTIMIZELY_LABS_DIR`` to a checkout of github.com/optimizely/labs to use the real files;
without it (CI has no route to GitHub) the same tree is rebuilt: same keys, same row counts,
same schema and Spark footer metadata, the events-only ``_SUCCESS`` and the local-Spark
``.crc`` side files.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import ExportSpec, partition_table
from optimizely_assets.e3.layout import ExportType

DAY = dt.date(2020, 9, 14)
SUBDIR = "labs/computing-experiment-metrics/covid_test_data"
DECISIONS = {
    "experiment=18786493712/part-00000-accac923-16d5-4105-b8e8-c0f702201dd1.c000.snappy.parquet": 10_000,
}
EVENTS = {
    f"event={name}/part-00000-6bfb2530-7428-4aa2-b8b1-8cfc971adcbe.c000.snappy.parquet": rows
    for name, rows in {
        "add_to_cart": 2_264,
        "detail_page_view": 14_198,
        "homepage_view": 19_922,
        "purchase": 2_264,
    }.items()
}
ACCOUNT = "596780373"  # the bucket layout puts account_id= above type=; the sample tree has none


def install_sample(bucket_root: Path) -> tuple[str, bool]:
    """Lay the sample out under ``bucket_root/v1/account_id=ACCOUNT/``; returns (account, real?)."""
    dest = bucket_root / "v1" / f"account_id={ACCOUNT}"
    labs = os.environ.get("OPTIMIZELY_LABS_DIR")
    if labs and (Path(labs) / SUBDIR).is_dir():
        shutil.copytree(Path(labs) / SUBDIR, dest, dirs_exist_ok=True)
        return ACCOUNT, True
    spec = ExportSpec(account_id=ACCOUNT)
    for export_type, files in ((ExportType.DECISIONS, DECISIONS), (ExportType.EVENTS, EVENTS)):
        day_dir = dest / f"type={export_type.value}" / f"date={DAY.isoformat()}"
        for i, (rel, rows) in enumerate(files.items()):
            value = rel.split("=", 1)[1].split("/", 1)[0]
            path = day_dir / rel
            write_parquet(partition_table(export_type, value, rows, DAY, spec, seed=i), path)
            (path.parent / f".{path.name}.crc").write_bytes(b"crc")
        if export_type is ExportType.EVENTS:
            (day_dir / "_SUCCESS").write_bytes(b"")
    return ACCOUNT, False
