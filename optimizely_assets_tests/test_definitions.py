"""What the catalog shows: kinds of the backend in use, owners, code references, standard metadata keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from optimizely_assets.definitions import build_definitions
from optimizely_assets.demo.synthetic import write_export
from optimizely_assets.e3.schemas import SCHEMAS
from optimizely_assets.settings import Settings
from optimizely_assets_tests.conftest import SMALL, START
from optimizely_assets_tests.helpers import local_settings, run_day

CLOUD = {"OPTIMIZELY_GCP_PROJECT": "proj", "OPTIMIZELY_GCS_BUCKET": "stage", "OPTIMIZELY_PAT": "x"}


def specs(env: dict) -> dict[str, object]:
    graph = build_definitions(Settings.from_env(env)).resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).assets_def.specs_by_key[k] for k in graph.get_all_asset_keys()}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            {
                "source_files": {"filesystem", "parquet"},
                "staged_files": {"filesystem", "parquet"},
                "raw_table": {"duckdb", "table"},
            },
        ),
        (
            CLOUD,
            {
                "source_files": {"s3", "parquet"},
                "staged_files": {"gcs", "parquet"},
                "raw_table": {"bigquery", "table"},
            },
        ),
    ],
)
def test_kinds_follow_the_backend_in_use(env, expected):
    by_key = specs(env)
    for stage, kinds in expected.items():
        assert set(by_key[f"decisions/{stage}"].kinds) == kinds
    assert set(by_key["events/canonical"].kinds) == expected["raw_table"]


def test_definitions_declare_owners_tables_columns_and_code_references():
    by_key = specs({**CLOUD, "OPTIMIZELY_OWNERS": "team:growth,ana@example.com"})
    raw, canonical = by_key["events/raw_table"], by_key["events/canonical"]
    assert raw.owners == ["team:growth", "ana@example.com"]
    assert raw.metadata["dagster/table_name"] == "proj.optimizely_e3.events_raw"
    assert canonical.metadata["dagster/table_name"] == "proj.optimizely_e3.events"
    raw_cols = [c.name for c in raw.metadata["dagster/column_schema"].columns]
    assert raw_cols == SCHEMAS.__getitem__(next(t for t in SCHEMAS if t.value == "events")).names
    canonical_cols = {c.name: c.type for c in canonical.metadata["dagster/column_schema"].columns}
    assert canonical_cols["export_date"] == "DATE" and canonical_cols["attributes"] == "ARRAY<RECORD>"
    assert canonical_cols["uuid_key"] == "BYTES"  # the dedup key (warehouse/uuid_key.py)
    for name, spec in by_key.items():
        (ref,) = spec.metadata["dagster/code_references"].code_references
        # One module per loading stage; the experiment analysis assets share theirs.
        module = {
            "privacy/deletion_log": "privacy",
            "analysis/experiment_metrics": "results",
            "analysis/experiment_results": "results",
            "analysis/experiments": "experiments",
        }.get(name, "analysis" if name.startswith("analysis/") else name.split("/")[-1])
        assert Path(ref.file_path).name == f"{module}.py", (name, ref.file_path)
    assert {"analysis/experiment_units", "analysis/experiment_results"} <= set(by_key)


def test_materializations_carry_dagsters_standard_keys(tmp_path):
    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)
    result = run_day(settings, START, DagsterInstance.ephemeral())
    meta = {
        n: result.asset_materializations_for_node(f"events__{n}")[0].metadata
        for n in ("source_files", "staged_files", "raw_table", "canonical")
    }
    assert str(meta["source_files"]["dagster/uri"].value).rstrip("/").endswith("type=events/date=2024-01-01")
    assert "staging" in str(meta["staged_files"]["dagster/uri"].value)
    assert meta["raw_table"]["dagster/table_name"].value == "warehouse.main.events_raw"
    rows = meta["canonical"]["dagster/row_count"].value
    assert rows == meta["canonical"]["inserted"].value == meta["canonical"]["table_rows_total"].value > 0


def test_materializing_source_files_alone_runs_their_drift_check_and_nothing_of_raw(tmp_path):
    """A UI subset: the listing's own step evaluates schema_drift; no raw check runs before a raw table exists."""
    from dagster import DagsterInstance

    from optimizely_assets.assets.keys import SOURCE_FILES, key
    from optimizely_assets.definitions import DAILY_JOB, build_definitions
    from optimizely_assets.demo.synthetic import write_export
    from optimizely_assets.e3.layout import ExportType
    from optimizely_assets.runs import console_log_level
    from optimizely_assets_tests.conftest import SMALL, START

    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    result = job.execute_in_process(
        partition_key=START.isoformat(),
        instance=DagsterInstance.ephemeral(),
        asset_selection=[key(t, SOURCE_FILES) for t in ExportType],
        raise_on_error=False,
        run_config=console_log_level("ERROR"),
    )
    assert result.success
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        "schema_drift",
        "success_marker_delivered",
    }


def test_the_definitions_use_no_dagster_api_deprecated_for_2_0():
    import warnings

    from optimizely_assets.definitions import DAILY_JOB, build_definitions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = build_definitions().resolve_job_def(DAILY_JOB)
    assert job.partitions_def is not None  # inferred from the assets
    # Dagster's deprecations point at the caller: ours land in our files, Dagster's own in its.
    ours = [str(w.message) for w in caught if "optimizely_assets" in w.filename]
    assert not [m for m in ours if "deprecated" in m.lower() and "__fields__" not in m], ours


def test_the_success_marker_check_runs_alone_from_the_source_now(tmp_path):
    """Evaluated in the source_files step; selected alone, it heads the marker instead of listing
    the day, so a day without one fails the check (it does not error)."""
    from dagster import AssetCheckKey

    from optimizely_assets.assets.keys import MARKER_CHECK, SOURCE_FILES, key
    from optimizely_assets.definitions import DAILY_JOB
    from optimizely_assets.e3.layout import ExportType, success_key
    from optimizely_assets.runs import console_log_level

    settings = local_settings(tmp_path / "local")
    write_export(settings.local_source_dir, [START], SMALL)
    defs = build_definitions(settings)
    check = AssetCheckKey(key(ExportType.DECISIONS, SOURCE_FILES), MARKER_CHECK)
    job = defs.resolve_job_def(DAILY_JOB).get_subset(asset_selection=set(), asset_check_selection={check})

    def evaluate() -> list[tuple[str, bool]]:
        result = job.execute_in_process(
            partition_key=START.isoformat(),
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
            run_config=console_log_level("ERROR"),
        )
        assert result.success
        return [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()]

    assert evaluate() == [(MARKER_CHECK, True)]
    source = build_definitions(settings).resources["source"]
    (settings.local_source_dir / success_key(source.root, ExportType.DECISIONS, START)).unlink()
    assert evaluate() == [(MARKER_CHECK, False)]
