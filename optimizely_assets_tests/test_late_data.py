"""Late data: the analysis tables are a function of what is loaded, not of load order or of which
export day delivered a row (issue: analysis on a stream).

One export is generated, a random share of its decisions and events moved to later export days
(within the lateness bound L, fixed seeds), one decision and one event moved beyond L. The days
are materialized forward, reverse and shuffled, each followed by what the automation daemon does
(``catch_up``). The three analysis tables must be identical across orders and equal to a
single-batch pandas computation of the definitions over the source files, written here.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import uuid as uuidlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from optimizely_assets.automation import catch_up
from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.demo.spark_parquet import write_parquet
from optimizely_assets.demo.synthetic import ExportSpec, date_range, write_export
from optimizely_assets.e3.layout import (
    ExportType,
    account_prefix,
    day_prefix,
    encode_partition_value,
    success_key,
)
from optimizely_assets_tests.helpers import QUIET, local_settings, query

L, WINDOW_HOURS = 3, 48
BASE_DAYS = date_range(dt.date(2024, 1, 1), 4)
SPEC = ExportSpec(
    experiments=3, decisions_per_day=500, events_per_day=900, duplicate_rate=0.0, cross_day_duplicates=0
)
ENV = {"OPTIMIZELY_LATENESS_DAYS": str(L), "OPTIMIZELY_ATTRIBUTION_WINDOW_HOURS": str(WINDOW_HOURS)}


SCALARS = (
    "uuid",
    "timestamp",
    "process_timestamp",
    "visitor_id",
    "experiment_id",
    "variation_id",
    "is_holdback",
    "event_name",
    "revenue",
)


def _read(root: Path, export_type: ExportType) -> tuple[pa.Table, pd.DataFrame]:
    """Every row of one type, as Arrow (to write back) and its scalar columns in pandas, row for row."""
    tables, days = [], []
    for path in sorted(root.rglob(f"type={export_type.value}/date=*/*/*.parquet")):
        table = pq.read_table(path)
        tables.append(table)
        days += [
            dt.date.fromisoformat(next(p for p in path.parts if p.startswith("date="))[5:])
        ] * table.num_rows
    table = pa.concat_tables(tables)
    frame = table.select([c for c in SCALARS if c in table.schema.names]).to_pandas()
    for col in ("timestamp", "process_timestamp"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["export_date"] = days
    return table, frame


def _move(rows: pd.DataFrame, rng: np.random.Generator, share: float) -> int:
    """Deliver a share of the rows 1..L days later than they were, never beyond L."""
    client = rows["timestamp"].dt.tz_localize(None).dt.normalize()
    lateness = (pd.to_datetime(rows["export_date"]) - client).dt.days
    room = (L - lateness).clip(lower=0).to_numpy()
    pick = (rng.random(len(rows)) < share) & (room > 0)
    shift = np.where(pick, rng.integers(1, np.maximum(room, 1) + 1), 0)
    _shift(rows, shift)
    return int(pick.sum())


def _shift(rows: pd.DataFrame, shift) -> None:
    rows["export_date"] = [
        d + dt.timedelta(days=int(s)) for d, s in zip(rows["export_date"], shift, strict=True)
    ]
    rows["process_timestamp"] = rows["process_timestamp"] + pd.to_timedelta(np.asarray(shift), unit="D")


def _beyond(rows: pd.DataFrame, uuid: str) -> None:
    """Deliver one row L + 1 days after its client date."""
    i = rows.index[rows["uuid"] == uuid][0]
    shift = np.zeros(len(rows), dtype=int)
    shift[i] = (rows.at[i, "timestamp"].date() + dt.timedelta(days=L + 1) - rows.at[i, "export_date"]).days
    _shift(rows, shift)


def _write(root: Path, export_type: ExportType, table: pa.Table, rows: pd.DataFrame) -> list[dt.date]:
    """The rows again in the E3 layout, each under its (new) export day."""
    table = table.set_column(
        table.schema.get_field_index("process_timestamp"),
        table.schema.field("process_timestamp"),
        pa.array(rows["process_timestamp"]).cast(table.schema.field("process_timestamp").type),
    )
    prefix_of = account_prefix(SPEC.account_id)
    column = "experiment_id" if export_type is ExportType.DECISIONS else "event_name"
    days = sorted(set(rows["export_date"]))
    for day in days:
        day_rows = table.filter(pa.array(rows["export_date"] == day))
        keys = pc.fill_null(day_rows.column(column), "NULL")
        for value in sorted(set(keys.to_pylist())):
            rel = (
                f"{day_prefix(prefix_of, export_type, day)}{export_type.partition_column}="
                f"{encode_partition_value(value)}/part-00000-{uuidlib.uuid4()}.c000.snappy.parquet"
            )
            write_parquet(day_rows.filter(pc.equal(keys, value)), root / rel)
        (root / success_key(prefix_of, export_type, day)).write_bytes(b"")
    return days


def reference(decisions: pd.DataFrame, events: pd.DataFrame) -> dict[str, list[tuple]]:
    """The definitions in one batch, in pandas: units, attributed events, results."""

    def bounded(frame: pd.DataFrame) -> pd.DataFrame:
        date = frame["timestamp"].dt.date
        lo = frame["export_date"] - pd.Timedelta(days=L)
        hi = frame["export_date"] + pd.Timedelta(days=1)
        return frame[frame["timestamp"].notna() & (date >= lo) & (date <= hi)]

    d = bounded(decisions).dropna(subset=["experiment_id", "visitor_id"])
    d = d.sort_values(["timestamp", "uuid"])
    first = d.groupby(["experiment_id", "visitor_id"], as_index=False).first()
    many = (
        d.groupby(["experiment_id", "visitor_id"])["variation_id"]
        .nunique(dropna=False)
        .gt(1)
        .rename("multiple")
    )
    units = first.merge(many.reset_index(), on=["experiment_id", "visitor_id"])
    kept = units[~units["is_holdback"].fillna(False).astype(bool)]
    e = bounded(events).merge(kept, on="visitor_id", suffixes=("", "_u"))
    e = e[
        (e["timestamp"] >= e["timestamp_u"])
        & (e["timestamp"] <= e["timestamp_u"] + pd.Timedelta(hours=WINDOW_HOURS))
    ]
    results = []
    for (exp, var), group in kept.groupby(["experiment_id", "variation_id"]):
        names = sorted(set(e.loc[e["experiment_id"] == exp, "event_name"].fillna("<null>")))
        for name in names or [None]:
            hit = e[
                (e["experiment_id"] == exp)
                & (e["variation_id"] == var)
                & (e["event_name"].fillna("<null>") == name)
            ]
            results.append(
                (
                    exp,
                    var,
                    None if name in (None, "<null>") else name,
                    len(group),
                    hit["visitor_id"].nunique(),
                    len(hit),
                    int(hit["revenue"].fillna(0).sum()),
                )
            )
    return {
        "units": sorted(
            (r.experiment_id, r.visitor_id, r.variation_id, r.uuid, bool(r.multiple))
            for r in units.itertuples()
        ),
        "events": sorted(zip(e["experiment_id"], e["uuid"], e["uuid_u"], strict=True)),
        "results": sorted(results, key=repr),
    }


def tables(settings) -> dict[str, list[tuple]]:
    return {
        "units": sorted(
            query(
                settings,
                "SELECT experiment_id, visitor_id, variation_id, decision_uuid, multiple_variations FROM experiment_units",
            )
        ),
        "events": sorted(
            query(settings, "SELECT experiment_id, event_uuid, decision_uuid FROM experiment_events")
        ),
        "results": sorted(
            query(
                settings,
                "SELECT experiment_id, variation_id, event_name, units, converting_units, events, revenue "
                "FROM experiment_results",
            ),
            key=repr,
        ),
    }


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("base")
    write_export(base, BASE_DAYS, SPEC)
    rng = np.random.default_rng(20)
    (d_table, decisions), (e_table, events) = (
        _read(base, ExportType.DECISIONS),
        _read(base, ExportType.EVENTS),
    )
    moved = _move(decisions, rng, 0.3) + _move(events, rng, 0.3)
    before = reference(decisions, events)
    # One attributed event and one decision that made a unit, delivered beyond L.
    late_event = before["events"][0][1]
    _beyond(events, late_event)
    late_unit = before["units"][0]
    _beyond(decisions, late_unit[3])
    source = tmp_path_factory.mktemp("source")
    days = sorted(
        set(_write(source, ExportType.DECISIONS, d_table, decisions))
        | set(_write(source, ExportType.EVENTS, e_table, events))
    )
    return {
        "source": source,
        "days": days,
        "reference": reference(decisions, events),
        "late_event": (late_event, sorted({x for x, u, _ in before["events"] if u == late_event})),
        "late_decision": late_unit[0],
        "moved": moved,
    }


def materialize(tmp: Path, export: dict, order: list[dt.date]) -> tuple[dict, list]:
    settings = local_settings(tmp / "local", **ENV)
    shutil.copytree(export["source"], settings.local_source_dir)
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    # The daemon's clock: the day after the last export day, so every day is within L + window.
    now = dt.datetime.combine(max(export["days"]) + dt.timedelta(days=1), dt.time(6), dt.timezone.utc)
    cursor, ran = catch_up(defs, instance, evaluation_time=now)
    evaluations = []
    for day in order:  # a tick after each run, as the daemon's (30 s) between runs that take longer
        result = job.execute_in_process(partition_key=day.isoformat(), instance=instance, run_config=QUIET)
        evaluations += result.get_asset_check_evaluations()
        cursor, more = catch_up(defs, instance, cursor, evaluation_time=now)
        ran += more
    # The lateness checks as they stand at the end (an earlier day's events may have met no unit yet).
    checks = {
        k for k in defs.resolve_asset_graph().asset_check_keys if k.name.endswith("_within_lateness_bound")
    }
    for day in order:
        result = job.get_subset(asset_selection=set(), asset_check_selection=checks).execute_in_process(
            partition_key=day.isoformat(), instance=instance, run_config=QUIET
        )
        evaluations += [e for e in result.get_asset_check_evaluations() if e.check_name.endswith("bound")]
    return tables(settings), evaluations, ran


def test_results_do_not_depend_on_load_order_or_delivery_day(export, tmp_path):
    days = export["days"]
    assert len(days) == len(BASE_DAYS) + L and export["moved"] > 100  # rows really arrive late
    shuffled = days[:]
    random.Random(5).shuffle(shuffled)
    got = {}
    for name, order in (("forward", days), ("reverse", days[::-1]), ("shuffled", shuffled)):
        got[name], evaluations, ran = materialize(tmp_path / name, export, order)
        if name == "forward":  # later days changed earlier days' attribution: automation re-ran them
            assert any(key == "analysis/experiment_events" for _, key in ran)
        blocking = [e for e in evaluations if e.blocking and not e.passed]
        assert blocking == []
        blocking = [e for e in evaluations if e.blocking and not e.passed]
        assert blocking == []
        final = evaluations[-2 * len(days) :]
        late = [e for e in final if not e.passed]
        assert len(late) == 2, [e.description for e in late]
        # Beyond L: counted and named, not attributed.
        event_check = next(e for e in late if e.check_name == "events_within_lateness_bound")
        assert event_check.metadata["per_experiment"].value == {x: 1 for x in export["late_event"][1]}
        decision_check = next(e for e in late if e.check_name == "decisions_within_lateness_bound")
        assert decision_check.metadata["per_experiment"].value == {export["late_decision"]: 1}
    want = export["reference"]
    assert export["late_event"][0] not in {u for _, u, _ in want["events"]}
    assert len(want["units"]) > 400 and len(want["events"]) > 200
    for name in ("forward", "reverse", "shuffled"):
        for table in ("units", "events", "results"):
            assert got[name][table] == want[table], f"{name}: {table} differs from the batch computation"
