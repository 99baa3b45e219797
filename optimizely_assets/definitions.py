"""Wires assets, resources, jobs and automation; the environment is chosen in ``settings``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from dagster import (
    AnchorBasedFilePathMapping,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    FilesystemIOManager,
    define_asset_job,
    definitions,
    link_code_references_to_git,
    with_source_code_references,
)
from dagster._utils.warnings import BetaWarning, PreviewWarning

from optimizely_assets.assets import build_export_assets
from optimizely_assets.assets.analysis import GROUP as ANALYSIS_GROUP
from optimizely_assets.assets.analysis import UNITS_POOL, build_analysis_assets
from optimizely_assets.assets.factory import Deployment
from optimizely_assets.assets.keys import canonical_pool
from optimizely_assets.assets.load_history import build_load_history_asset
from optimizely_assets.assets.maintenance import compact_job, compact_schedule
from optimizely_assets.assets.mixpanel import build_mixpanel_asset
from optimizely_assets.assets.privacy import DELETION_LOG_KEY, build_deletion_log_asset
from optimizely_assets.assets.results import build_results_assets
from optimizely_assets.automation import build_daily_schedule, build_success_sensor
from optimizely_assets.checks_analysis import build_analysis_checks
from optimizely_assets.concurrency import guarded_in_process_executor
from optimizely_assets.e3.layout import ExportType
from optimizely_assets.mixpanel.import_api import MixpanelImport
from optimizely_assets.privacy.tables import PrivacySettings
from optimizely_assets.resources.experiment_catalog import OfflineExperimentCatalog, RestExperimentCatalog
from optimizely_assets.resources.loader_config import LoaderConfig
from optimizely_assets.resources.source import LocalExportSource
from optimizely_assets.resources.staging import LocalStaging
from optimizely_assets.settings import Settings
from optimizely_assets.warehouse.analysis_sql import Window
from optimizely_assets.warehouse.duckdb import DuckDBWarehouse

DAILY_JOB = "optimizely_daily"
FORGET_JOB = "optimizely_forget_visitors"

# Partitioned asset checks (preview) and backfill policies (beta) in Dagster 1.13 are exactly
# what per-day proof and per-day backfills need: their warnings are filtered here, once, by category.
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", category=BetaWarning)


def deployment_of(settings: Settings) -> Deployment:
    """What the UI shows for kinds, owners and table names: what this environment runs on."""
    bigquery = settings.warehouse == "bigquery"
    return Deployment(
        source="s3" if settings.source == "s3" else "filesystem",
        staging="gcs" if bigquery else "filesystem",
        warehouse=settings.warehouse,
        table_prefix=f"{settings.gcp_project}.{settings.bq_dataset}"
        if bigquery
        else f"{settings.duckdb_path.stem}.main",
        owners=settings.owners,
    )


def with_code_references(assets: list) -> list:
    """ "View code" lands on each asset's function; on GitHub too when OPTIMIZELY_GIT_URL is set."""
    assets = with_source_code_references(assets)
    git_url = os.environ.get("OPTIMIZELY_GIT_URL")
    if not git_url:
        return assets
    return link_code_references_to_git(
        assets,
        git_url=git_url,
        git_branch=os.environ.get("OPTIMIZELY_GIT_BRANCH", "main"),
        file_path_mapping=AnchorBasedFilePathMapping(
            local_file_anchor=Path(__file__).parent.parent, file_anchor_path_in_repository=""
        ),
    )


def build_resources(settings: Settings) -> dict:
    if settings.source == "s3":
        from dagster_aws.s3 import S3Resource

        from optimizely_assets.resources.optimizely_auth import OptimizelyCredentialsResource
        from optimizely_assets.resources.s3_source import S3ExportSource

        s3 = S3Resource(region_name=settings.aws_region, endpoint_url=settings.s3_endpoint_url)
        optimizely = (
            OptimizelyCredentialsResource(
                personal_access_token=EnvVar("OPTIMIZELY_PAT"),
                api_url=settings.optimizely_api_url,
                duration=settings.credentials_duration,
            )
            if settings.has_pat
            else None
        )
        source = S3ExportSource(
            s3=s3, optimizely=optimizely, bucket=settings.s3_bucket, account_id=settings.account_id
        )
    else:
        source = LocalExportSource(
            root_dir=str(settings.local_source_dir), account_id=settings.account_id or ""
        )

    if settings.warehouse == "bigquery":
        # Imported here: the Google client libraries cost ~130 MB of RSS the embedded default never needs.
        from dagster_gcp import GCSResource
        from dagster_gcp.gcs import GCSPickleIOManager

        from optimizely_assets.resources.gcs_staging import GCSStaging
        from optimizely_assets.warehouse.bigquery import BigQueryWarehouse

        gcs = GCSResource(project=settings.gcp_project)
        staging = GCSStaging(gcs=gcs, bucket=settings.gcs_bucket, prefix=settings.gcs_prefix)
        warehouse = BigQueryWarehouse(
            project=settings.gcp_project,
            dataset=settings.bq_dataset,
            location=settings.bq_location,
            api_endpoint=settings.bq_api_endpoint,
            maximum_bytes_billed=settings.bq_maximum_bytes_billed,
        )
        io_manager = GCSPickleIOManager(
            gcs=gcs, gcs_bucket=settings.gcs_bucket, gcs_prefix=f"{settings.gcs_prefix}/dagster_io"
        )
    else:
        staging = LocalStaging(root_dir=str(settings.local_staging_dir))
        warehouse = DuckDBWarehouse(path=str(settings.duckdb_path))
        io_manager = FilesystemIOManager(base_dir=str(settings.local_dir / "dagster_io"))

    # Names from the REST API with the same token as the export credentials; offline, synthetic/ids.
    catalog = (
        RestExperimentCatalog(personal_access_token=EnvVar("OPTIMIZELY_PAT"), api_url=settings.rest_api_url)
        if settings.has_pat
        else OfflineExperimentCatalog()
    )

    return {
        "source": source,
        "staging": staging,
        "warehouse": warehouse,
        "loader": LoaderConfig(),
        "catalog": catalog,
        "io_manager": io_manager,
        **(
            {
                "mixpanel": MixpanelImport(
                    project_id=settings.mixpanel.project_id,
                    username=settings.mixpanel.username,
                    secret=EnvVar("MIXPANEL_SERVICE_ACCOUNT_SECRET"),
                    api_host=settings.mixpanel.api_host,
                )
            }
            if settings.mixpanel
            else {}
        ),
        # The salt of forgotten visitors' hashes: OPTIMIZELY_FORGET_SALT; offline, a local random one.
        "privacy": PrivacySettings(
            local_dir=None if settings.warehouse == "bigquery" else str(settings.local_dir)
        ),
    }


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    daily = DailyPartitionsDefinition(start_date=settings.start_date)
    deployment = deployment_of(settings)
    window = Window(settings.attribution_window_hours, settings.lateness_days)
    assets = with_code_references(
        [a for t in ExportType for a in build_export_assets(t, daily, deployment)]
        + build_analysis_assets(
            daily, deployment, window, settings.exclude_multiple_variation_units, dict(settings.baselines)
        )
        + [build_results_assets(daily, deployment, settings.exclude_multiple_variation_units)]
        + [build_load_history_asset()]
    )
    deletion_log, requests_completed = build_deletion_log_asset(settings.exclude_multiple_variation_units)
    assets += with_code_references([deletion_log])
    if settings.mixpanel is not None:  # the optional feed: present only with its settings
        assets += with_code_references(
            [
                build_mixpanel_asset(t, daily, list(deployment.owners), settings.mixpanel.mapping_file)
                for t in ExportType
            ]
        )
    # The export checks are evaluated in their assets' steps; the analysis ones in their own.
    checks = [*build_analysis_checks(daily, window), requests_completed]
    daily_job = define_asset_job(
        DAILY_JOB,
        # Its partitions are the assets' own (one daily definition); deletions run on request.
        selection=AssetSelection.all() - AssetSelection.assets(DELETION_LOG_KEY),
        description="Every asset and check of one export day, both types.",
    )
    forget_job = define_asset_job(
        FORGET_JOB,
        selection=AssetSelection.assets(DELETION_LOG_KEY),
        description="Forget the visitors queued in deletion_requests (`optimizely-assets forget` runs it).",
    )
    resources = build_resources(settings)
    # Where the backend itself does not keep MERGEs into one table apart, the instance must.
    serialised = (
        []
        if resources["warehouse"].merges_serialised_by_backend
        else [*(canonical_pool(t) for t in ExportType), UNITS_POOL]
    )
    return Definitions(
        assets=assets,
        asset_checks=checks,
        # The DuckDB file's upkeep; BigQuery lays out its own storage.
        jobs=[daily_job, forget_job, *([] if settings.warehouse == "bigquery" else [compact_job])],
        schedules=[
            build_daily_schedule(daily_job),
            *([] if settings.warehouse == "bigquery" else [compact_schedule]),
        ],
        sensors=[
            build_success_sensor(
                daily_job, daily, settings.sensor_lookback_days, bound_days=LoaderConfig().dedup_horizon_days
            ),
            # Late rows bring earlier analysis days up to date (README, "Late data"). Off by
            # default, like the _SUCCESS sensor: a deployment turns its automation on in one place.
            AutomationConditionSensorDefinition(
                "optimizely_analysis_automation",
                target=AssetSelection.groups(ANALYSIS_GROUP),
                default_status=DefaultSensorStatus.STOPPED,
            ),
        ],
        resources=resources,
        # One process per run for every job, the implicit asset job included: the steps only issue
        # I/O and warehouse jobs, so a process per step costs more in start-up than the work.
        executor=guarded_in_process_executor(serialised),
    )


@definitions
def defs() -> Definitions:
    """What `dg`, the webserver and `dagster asset materialize -m` load: built when they load it,
    not when the CLI, the benchmarks or the tests import this module for `build_definitions`."""
    return build_definitions()
