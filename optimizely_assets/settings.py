"""The one place that decides local vs cloud, from environment variables.

Embedded default (nothing set): the export is read from ``$OPTIMIZELY_LOCAL_DIR/source``,
staged in ``$OPTIMIZELY_LOCAL_DIR/staging`` and loaded into DuckDB at
``$OPTIMIZELY_LOCAL_DIR/warehouse.duckdb``.

- Source is Optimizely's S3 bucket when ``OPTIMIZELY_PAT`` is set (temporary credentials
  from the export API) or ``OPTIMIZELY_SOURCE=s3`` (plain AWS credentials / role, with
  ``OPTIMIZELY_ACCOUNT_ID``).
- Staging + warehouse are GCS + BigQuery when ``OPTIMIZELY_GCP_PROJECT`` is set, which then
  also needs ``OPTIMIZELY_GCS_BUCKET``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


_GLOB_CHARS = frozenset("*?[]{}")


def _positive_int(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _flag(value: str, name: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    return value.lower() in ("true", "1", "yes")


def _baselines(value: str, name: str) -> tuple[tuple[str, str], ...]:
    """``experiment_id=variation_id,...``; a malformed pair names the variable."""
    out = []
    for pair in filter(None, (p.strip() for p in value.split(","))):
        experiment_id, sep, variation_id = (part.strip() for part in pair.partition("="))
        if not sep or not experiment_id or not variation_id:
            raise SettingsError(f"{name}: {pair!r} is not experiment_id=variation_id")
        out.append((experiment_id, variation_id))
    return tuple(out)


@dataclass(frozen=True)
class MixpanelSettings:
    project_id: str
    username: str  # the secret stays in MIXPANEL_SERVICE_ACCOUNT_SECRET, read by an EnvVar
    api_host: str
    mapping_file: str | None


_MIXPANEL = ("MIXPANEL_PROJECT_ID", "MIXPANEL_SERVICE_ACCOUNT_USERNAME", "MIXPANEL_SERVICE_ACCOUNT_SECRET")
_MIXPANEL_HOSTS = {
    "us": "https://api.mixpanel.com",
    "eu": "https://api-eu.mixpanel.com",
    "in": "https://api-in.mixpanel.com",
}


def _mixpanel(get) -> MixpanelSettings | None:
    """All three set: the feed is on; none: off; some: an error naming the missing ones."""
    given = [n for n in _MIXPANEL if get(n)]
    if not given:
        return None
    if len(given) < len(_MIXPANEL):
        missing = ", ".join(n for n in _MIXPANEL if n not in given)
        raise SettingsError(f"the Mixpanel feed needs {missing} too (or none of {', '.join(given)})")
    host = get("MIXPANEL_API_HOST", "us")
    host = _MIXPANEL_HOSTS.get(host.lower(), host)
    if not host.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SettingsError(f"MIXPANEL_API_HOST must be us, eu, in or an https:// URL, got {host!r}")
    mapping = get("MIXPANEL_MAPPING_FILE")
    if mapping and not Path(mapping).is_file():
        raise SettingsError(f"MIXPANEL_MAPPING_FILE: {mapping} is not a file")
    return MixpanelSettings(get(_MIXPANEL[0]), get(_MIXPANEL[1]), host, mapping)


@dataclass(frozen=True)
class Settings:
    start_date: str
    local_dir: Path
    source: str  # "local" | "s3"
    account_id: str | None
    s3_bucket: str
    s3_endpoint_url: str | None
    aws_region: str
    optimizely_api_url: str
    credentials_duration: str
    warehouse: str  # "duckdb" | "bigquery"
    gcp_project: str | None
    gcs_bucket: str | None
    gcs_prefix: str
    bq_dataset: str
    bq_location: str
    bq_api_endpoint: str | None
    has_pat: bool
    sensor_lookback_days: int = 3
    bq_maximum_bytes_billed: int | None = 1 << 40
    owners: tuple[str, ...] = ("team:data-engineering",)
    rest_api_url: str = "https://api.optimizely.com/v2"
    attribution_window_hours: int = 48
    lateness_days: int = 7
    exclude_multiple_variation_units: bool = False
    baselines: tuple[tuple[str, str], ...] = ()  # experiment id -> baseline variation id
    mixpanel: MixpanelSettings | None = None  # the optional Mixpanel feed

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        has_pat = get("OPTIMIZELY_PAT") is not None
        source = get("OPTIMIZELY_SOURCE", "s3" if has_pat else "local")
        # The embedded default's partitions start at its first exported day, so "Materialize all" in
        # the UI is the days there are; with none yet, 30 days back, where the demo writes (the UI's
        # "last 90 days"). A real export starts where the user says.
        recent = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=30)).isoformat()
        local_dir = Path(get("OPTIMIZELY_LOCAL_DIR", ".optimizely_local")).resolve()
        first_local = first_exported_day(local_dir / "source") if source == "local" else None
        start = get("OPTIMIZELY_START_DATE", (first_local or recent) if source == "local" else "2024-01-01")
        try:
            dt.date.fromisoformat(start)
        except ValueError:
            raise SettingsError(f"OPTIMIZELY_START_DATE must be YYYY-MM-DD, got {start!r}") from None

        if source not in ("local", "s3"):
            raise SettingsError(f"OPTIMIZELY_SOURCE must be 'local' or 's3', got {source!r}")
        account_id = get("OPTIMIZELY_ACCOUNT_ID", None if source == "s3" else "5935064")
        if source == "s3" and not has_pat and not account_id:
            raise SettingsError(
                "OPTIMIZELY_SOURCE=s3 without OPTIMIZELY_PAT needs OPTIMIZELY_ACCOUNT_ID "
                "(plain AWS credentials or a role read v1/account_id=<id>/)"
            )
        if account_id is not None and not account_id.isdigit():
            raise SettingsError(f"OPTIMIZELY_ACCOUNT_ID must be digits, got {account_id!r}")

        project = get("OPTIMIZELY_GCP_PROJECT")
        bucket = get("OPTIMIZELY_GCS_BUCKET")
        if project and not bucket:
            raise SettingsError(
                "OPTIMIZELY_GCP_PROJECT is set: BigQuery loads from GCS, so set OPTIMIZELY_GCS_BUCKET too"
            )
        if bucket and not project:
            raise SettingsError(
                "OPTIMIZELY_GCS_BUCKET is set: set OPTIMIZELY_GCP_PROJECT for the BigQuery dataset too"
            )

        if _GLOB_CHARS & set(str(local_dir)):
            raise SettingsError(
                f"OPTIMIZELY_LOCAL_DIR {str(local_dir)!r} contains one of {''.join(sorted(_GLOB_CHARS))}: "
                "DuckDB would read such a path as a file pattern; choose another directory"
            )
        duration = get("OPTIMIZELY_CREDENTIALS_DURATION", "1h")
        if not re.fullmatch(r"(1[hH]|(1[5-9]|[2-5][0-9]|60)[mM])", duration):
            raise SettingsError(f"OPTIMIZELY_CREDENTIALS_DURATION must be 15m..60m or 1h, got {duration!r}")
        max_billed = get("OPTIMIZELY_BQ_MAXIMUM_BYTES_BILLED", str(1 << 40))
        if max_billed.lower() != "off" and (not max_billed.isdigit() or int(max_billed) < 1):
            raise SettingsError(
                f"OPTIMIZELY_BQ_MAXIMUM_BYTES_BILLED must be a number of bytes or 'off', got {max_billed!r}"
            )

        owners = tuple(
            o.strip() for o in get("OPTIMIZELY_OWNERS", "team:data-engineering").split(",") if o.strip()
        )
        bad_owners = [o for o in owners if not (o.startswith("team:") or re.fullmatch(r"[^@\s]+@[^@\s]+", o))]
        if bad_owners:
            raise SettingsError(
                f"OPTIMIZELY_OWNERS takes emails or team:<name>, comma-separated; got {', '.join(bad_owners)}"
            )

        return cls(
            start_date=start,
            local_dir=local_dir,
            source=source,
            account_id=account_id,
            s3_bucket=get("OPTIMIZELY_S3_BUCKET", "optimizely-events-data"),
            s3_endpoint_url=get("OPTIMIZELY_S3_ENDPOINT_URL"),
            aws_region=get("AWS_REGION", "us-east-1"),
            optimizely_api_url=get("OPTIMIZELY_API_URL", "https://api.optimizely.com"),
            credentials_duration=duration,
            warehouse="bigquery" if project else "duckdb",
            gcp_project=project,
            gcs_bucket=bucket,
            gcs_prefix=get("OPTIMIZELY_GCS_PREFIX", "optimizely"),
            bq_dataset=get("OPTIMIZELY_BQ_DATASET", "optimizely_e3"),
            bq_location=get("OPTIMIZELY_BQ_LOCATION", "US"),
            bq_api_endpoint=get("OPTIMIZELY_BQ_API_ENDPOINT"),
            has_pat=has_pat,
            sensor_lookback_days=_positive_int(
                get("OPTIMIZELY_SENSOR_LOOKBACK_DAYS", "3"), "OPTIMIZELY_SENSOR_LOOKBACK_DAYS"
            ),
            bq_maximum_bytes_billed=None if max_billed.lower() == "off" else int(max_billed),
            owners=owners,
            rest_api_url=get("OPTIMIZELY_REST_API_URL", "https://api.optimizely.com/v2"),
            attribution_window_hours=_positive_int(
                get("OPTIMIZELY_ATTRIBUTION_WINDOW_HOURS", "48"), "OPTIMIZELY_ATTRIBUTION_WINDOW_HOURS"
            ),
            lateness_days=_positive_int(get("OPTIMIZELY_LATENESS_DAYS", "7"), "OPTIMIZELY_LATENESS_DAYS"),
            exclude_multiple_variation_units=_flag(
                get("OPTIMIZELY_EXCLUDE_MULTIPLE_VARIATION_UNITS", "false"),
                "OPTIMIZELY_EXCLUDE_MULTIPLE_VARIATION_UNITS",
            ),
            baselines=_baselines(get("OPTIMIZELY_BASELINES", ""), "OPTIMIZELY_BASELINES"),
            mixpanel=_mixpanel(get),
        )

    @property
    def local_source_dir(self) -> Path:
        return self.local_dir / "source"

    @property
    def local_staging_dir(self) -> Path:
        return self.local_dir / "staging"

    @property
    def duckdb_path(self) -> Path:
        return self.local_dir / "warehouse.duckdb"


def first_exported_day(source_dir: Path) -> str | None:
    """The earliest ``date=`` folder of any account and type under a local export, if any."""
    days = []
    for folder in source_dir.glob("v1/account_id=*/type=*/date=*"):
        try:
            days.append(dt.date.fromisoformat(folder.name.removeprefix("date=")))
        except ValueError:
            continue
    return min(days).isoformat() if days else None
