"""Optimizely re-delivers a day: its files are rewritten with other rows. Re-run, canonical follows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, DagsterInstance

from optimizely_assets.definitions import DAILY_JOB, build_definitions
from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.instance import atomic_slot_claims
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import QUIET, all_clean, checks_of, local_settings, query, run_day

T = ExportType.DECISIONS
CANONICAL = AssetKey([T.value, "canonical"])
WITHIN = f"{T.value}/canonical:canonical_day_within_raw_day"
PRESENT = f"{T.value}/canonical:every_source_{T.partition_column}_in_warehouse"


def rewrite_day(root, written) -> tuple[set[str], str]:
    """Each file of the day keeps a third of its rows under new uuids, one with another variation."""
    kept: set[str] = set()
    for rel in written.files:
        path = root / rel
        table = pq.read_table(path)
        n = max(1, table.num_rows // 3)
        part = table.slice(0, n)
        uuids = [f"redelivered-{path.stem}-{i}" for i in range(n)]
        part = part.set_column(
            part.column_names.index("uuid"), "uuid", pa.array(uuids, part.schema.field("uuid").type)
        )
        variation = part["variation_id"].to_pylist()
        variation[0] = "changed-variation"
        part = part.set_column(part.column_names.index("variation_id"), "variation_id", pa.array(variation))
        pq.write_table(part.cast(table.schema), path)
        kept |= set(uuids)
    return kept, f"redelivered-{(root / next(iter(written.files))).stem}-0"


def test_a_rewritten_day_rerun_leaves_canonical_equal_to_raw_and_the_new_check_sees_the_gap(tmp_path):
    settings = local_settings(tmp_path / "local")
    (written,) = [w for w in write_export(settings.local_source_dir, [START], SMALL) if w.export_type is T]
    instance = atomic_slot_claims(DagsterInstance.ephemeral())
    assert run_day(settings, START, instance).success

    uuids, changed = rewrite_day(settings.local_source_dir, written)
    # Raw reloaded, canonical not yet: what an insert-only MERGE leaves. The old checks (raw within
    # canonical) pass; the new one fails and names the count.
    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)
    keys = {k for k in job.asset_layer.executable_asset_keys if k.path[-1] in ("source_files", "raw_table")}
    assert (
        job.get_subset(asset_selection=keys)
        .execute_in_process(
            partition_key=START.isoformat(), instance=instance, run_config=QUIET, raise_on_error=False
        )
        .success
    )
    canonical_checks = {k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key == CANONICAL}
    result = job.get_subset(asset_selection=set(), asset_check_selection=canonical_checks).execute_in_process(
        partition_key=START.isoformat(), instance=instance, run_config=QUIET, raise_on_error=False
    )
    checks = checks_of(result)
    assert checks[PRESENT] is False  # the new uuids are not in canonical yet
    assert checks[WITHIN] is False
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == WITHIN.split(":")[1]]
    assert evaluation.metadata["uuids_not_in_raw"].value == len(written.unique_uuids)

    result = run_day(settings, START, instance)
    assert result.success and all_clean(result), {k: v for k, v in checks_of(result).items() if not v}
    rows = query(settings, f"SELECT uuid, variation_id FROM {T.value} WHERE export_date = ?", [START])
    assert {u for u, _ in rows} == uuids
    assert dict(rows)[changed] == "changed-variation"
    (mat,) = [m for m in result.asset_materializations_for_node(f"{T.value}__canonical")]
    assert mat.metadata["removed_not_in_raw"].value == len(written.unique_uuids)
    assert mat.metadata["inserted"].value == len(uuids)
    # Units followed: the decisions the day lost no longer make units, and the checks above include
    # unit_variation_in_decisions; the pairs were derived again from what canonical holds.
    (units,) = result.asset_materializations_for_node("analysis__experiment_units")
    assert units.metadata["retracted"].value > 0
    assert query(
        settings,
        "SELECT count(*) FROM experiment_units AS u WHERE NOT EXISTS "
        f"(SELECT 1 FROM {T.value} AS d WHERE d.uuid = u.decision_uuid)",
    ) == [(0,)]
