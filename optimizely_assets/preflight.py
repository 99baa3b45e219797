"""``optimizely-assets preflight``: will the pipeline work with these settings? Minutes, not a backfill.

Each step runs the real client against the real service with the settings a run would use, and
a failure names the missing permission or setting. Nothing it creates outlives it but the
dataset and tables, which the first run would create anyway.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from optimizely_assets.e3.layout import (
    ExportType,
    day_prefix,
    is_data_file,
    staged_name,
    success_key,
    type_prefix,
)
from optimizely_assets.loading.staging_copy import StagedFile
from optimizely_assets.resources.source import ExportSource
from optimizely_assets.resources.staging import Staging
from optimizely_assets.settings import Settings
from optimizely_assets.warehouse import Warehouse
from optimizely_assets.warehouse.analysis_sql import Window

HINTS = {
    "source": "the source credentials need s3:ListBucket on the account prefix and s3:GetObject on its files",
    "staging": "the staging credentials need roles/storage.objectAdmin on the staging bucket (an IAM "
    "condition on resource.name can narrow it to OPTIMIZELY_GCS_PREFIX)",
    "warehouse": "the BigQuery credentials need roles/bigquery.jobUser on the project and "
    "roles/bigquery.dataEditor on the dataset; create the dataset once (`bq mk --dataset PROJECT:DATASET`) "
    "and no project-level dataset permission is needed",
}


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Preflight:
    source: ExportSource
    staging: Staging
    warehouse: Warehouse
    horizon_days: int = 30
    window: Window = field(default_factory=Window)  # the analysis run's attribution window and L
    credentials_check: Callable[[], str] | None = None  # one call to Optimizely's credentials API
    steps: list[Step] = field(default_factory=list)
    latest: dict[ExportType, dt.date] = field(default_factory=dict)

    def step(self, name: str, hint: str, fn: Callable[[], str]) -> bool:
        start = time.monotonic()
        try:
            detail, ok = fn(), True
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal to the report
            detail, ok = f"{type(exc).__name__}: {exc}".strip() + (f" ({hint})" if hint else ""), False
        self.steps.append(Step(name, ok, detail, time.monotonic() - start))
        return ok

    def run(self) -> list[Step]:
        hint = HINTS["warehouse"] if self.warehouse.kind == "bigquery" else ""
        if self.credentials_check:
            self.step("optimizely credentials API", "check OPTIMIZELY_PAT", self.credentials_check)
        self.step("latest exported day", HINTS["source"], self._latest)
        self.step("staging write/read/delete", HINTS["staging"], self._probe_staging)
        if self.step("warehouse dataset and tables", hint, self._tables):
            for export_type, day in self.latest.items():
                self.step(
                    f"dry run {export_type.value} {day}", hint, lambda t=export_type, d=day: self._dry(t, d)
                )
                self.step(
                    f"dry run rest {export_type.value} {day}",
                    hint,
                    lambda t=export_type, d=day: self._dry_more(t, d),
                )
                self.step(
                    f"price {export_type.value} {day}",
                    "",
                    lambda t=export_type, d=day: self._price(t, d),
                )
                self.step(
                    f"smoke load {export_type.value} {day}",
                    hint,
                    lambda t=export_type, d=day: self._smoke(t, d),
                )
        return self.steps

    def _latest(self) -> str:
        found = []
        for export_type in ExportType:
            days = self.source.list_days(type_prefix(self.source.root, export_type))
            complete = next(
                (
                    d
                    for d in reversed(days)
                    if self.source.head(success_key(self.source.root, export_type, d))
                ),
                None,
            )
            if complete is None:
                found.append(f"{export_type.value}: no day with _SUCCESS among {len(days)} listed")
                continue
            self.latest[export_type] = dt.date.fromisoformat(complete)
            found.append(f"{export_type.value}: {complete} ({len(days)} days listed)")
        if not self.latest:
            raise RuntimeError(
                f"no complete day under {self.source.uri(self.source.root)}: " + "; ".join(found)
            )
        return "; ".join(found)

    def _probe_staging(self) -> str:
        key = f"_preflight/{uuid.uuid4().hex}.txt"
        payload = b"optimizely-assets preflight\n"
        self.staging.put(key, io.BytesIO(payload), len(payload), "preflight", "preflight")
        try:
            if self.staging.read(key) != payload:
                raise RuntimeError(f"{self.staging.uri(key)} read back different bytes")
        finally:
            self.staging.delete([key])
        return f"wrote, read and deleted {self.staging.uri(key)}"

    def _tables(self) -> str:
        for export_type in ExportType:
            self.warehouse.ensure_tables(export_type)
        said = ", ".join(self.warehouse.table_uri(t, w) for t in ExportType for w in ("raw", "canonical"))
        return said + self._time_travel()

    def _time_travel(self) -> str:
        """How long BigQuery keeps a forgotten visitor's deleted rows (README, "Forget a visitor")."""
        if self.warehouse.kind != "bigquery":
            return ""
        wh = self.warehouse
        dataset = wh.client.get_dataset(f"{wh.project}.{wh.dataset}")  # type: ignore[attr-defined]
        hours = dataset.max_time_travel_hours
        window = f"{int(hours)} h" if hours else "168 h (BigQuery's default)"
        return f"; deleted rows stay readable by time travel for {window}, then 7 days of fail-safe"

    def _dry(self, export_type: ExportType, day: dt.date) -> str:
        plans = self.warehouse.dry_run(export_type, day, self.horizon_days)
        # What a day bills on this project now: every statement but the raw DELETE a load job replaces.
        day_total = sum(b or 0 for name, b in plans if name != "delete_raw_day")
        said = ", ".join(f"{name} {human_size(b)}" for name, b in plans)
        return f"{said}; the day's MERGE and checks together {human_size(day_total)}"

    def _dry_more(self, export_type: ExportType, day: dt.date) -> str:
        """The ALTER, load_history, scratch-copy and (with decisions) analysis statements of the day."""
        if self.warehouse.kind != "bigquery":
            return "the embedded default: its day's statements are EXPLAINed above"
        from optimizely_assets.warehouse import analysis_sql as a
        from optimizely_assets.warehouse import metrics_sql, results_sql
        from optimizely_assets.warehouse import redelivery_sql as r
        from optimizely_assets.warehouse.analysis import ExperimentAnalysis
        from optimizely_assets.warehouse.bigquery_scratch import dry_run_more

        statements: list[tuple[str, str]] = []
        if export_type is ExportType.DECISIONS:  # one analysis run a day
            analysis = ExperimentAnalysis(self.warehouse)
            analysis.ensure_tables()
            n, w = analysis.names, self.window
            statements = [
                ("units_retracted", f"SELECT COUNT(*) FROM ({r.retracted_units(n, day)}) AS r"),
                ("units_rederive", r.rederive_units(n, day, w)),
                ("events_delete_moved", a.delete_moved_events(n, day, w)),
                ("units_merge", a.merge_units(n, day, w)),
                *((f"events_replace_{i}", s) for i, s in enumerate(a.replace_events(n, day, w, True))),
                ("results_rebuild", results_sql.rebuild_results(n)),
                ("late_decisions", a.late_decisions(n, day, w)),
                ("metric_sums", metrics_sql.metric_sums(n, True)),
            ]
        plans = dry_run_more(self.warehouse, export_type, day, statements)
        return ", ".join(f"{name} {human_size(b)}" for name, b in plans)

    def _price(self, export_type: ExportType, day: dt.date) -> str:
        """The day's MERGE and checks once canonical holds the window, against maximum_bytes_billed."""
        from optimizely_assets.loading.manifest import build_manifest
        from optimizely_assets.planning import horizon_within, price_day

        manifest = build_manifest(self.source, export_type, day)
        prices = price_day(manifest.rows, manifest.bytes, self.horizon_days)
        said = ", ".join(f"{name} ~{human_size(b)}" for name, b in prices.items())
        scope = f"at a full window: {manifest.rows:,} rows a day over {2 * self.horizon_days + 1} export days"
        limit = getattr(self.warehouse, "maximum_bytes_billed", None)
        if self.warehouse.kind != "bigquery":
            return f"{said} ({scope}); the embedded default bills nothing"
        if not limit or max(prices.values()) <= limit:
            return f"{said} ({scope}), within maximum_bytes_billed {human_size(limit) if limit else 'off'}"
        fits = horizon_within(manifest.rows, manifest.bytes, limit, self.horizon_days)
        fix = (
            f"lower the loader's dedup_horizon_days to {fits} or less, or raise"
            if fits is not None
            else "even one export day is past it: raise"
        )
        raise RuntimeError(
            f"{said} ({scope}): past maximum_bytes_billed {human_size(limit)}, so the day's jobs would fail "
            f"once canonical holds the window; {fix} OPTIMIZELY_BQ_MAXIMUM_BYTES_BILLED"
        )

    def _smoke(self, export_type: ExportType, day: dt.date) -> str:
        files = [
            o
            for o in self.source.list_objects(day_prefix(self.source.root, export_type, day))
            if is_data_file(o.key)
        ]
        if not files:
            return "the day lists no data files; nothing to load"
        obj = min(files, key=lambda o: o.size)
        footer = self.source.footer(obj)
        name = "_preflight/" + staged_name(self.source.root, export_type, day, obj.key)
        with self.source.open_stream(obj.key) as stream:
            self.staging.put(name, stream, obj.size, obj.etag, obj.key)
        try:
            rows, types = self.warehouse.smoke_load(
                export_type, day, StagedFile(self.staging.uri(name), self.source.uri(obj.key), footer.rows)
            )
        finally:
            self.staging.delete([name])
        if rows != footer.rows:
            raise RuntimeError(
                f"{self.source.uri(obj.key)}: loaded {rows:,} rows, its footer says {footer.rows:,}"
            )
        wrong = {c: t for c, t in types.items() if "TIMESTAMP" not in t.upper()}
        if wrong:
            raise RuntimeError(f"{self.source.uri(obj.key)}: timestamps load as {wrong}, not TIMESTAMP")
        return f"{self.source.uri(obj.key)}: {rows:,} rows = footer, timestamps {sorted(set(types.values()))}"


def human_size(n: int | None) -> str:
    if n is None:
        return "(planned)"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def run_preflight(settings: Settings) -> int:
    """Print one line per step; 0 when every step passed."""
    from dagster import build_resources as initialize

    from optimizely_assets.definitions import build_resources

    wanted = {k: v for k, v in build_resources(settings).items() if k != "io_manager"}
    # Initialized as a run would: EnvVar("OPTIMIZELY_PAT") is resolved here, never printed.
    with initialize(wanted) as r:
        optimizely = getattr(r.source, "optimizely", None)

        def credentials() -> str:
            c = optimizely.fetch()
            return f"account {c.account_id}, s3://{c.bucket}/{c.prefix}, expires {c.expiration:%H:%M} UTC"

        steps = Preflight(
            source=r.source,
            staging=r.staging,
            warehouse=r.warehouse,
            horizon_days=r.loader.dedup_horizon_days,
            window=Window(settings.attribution_window_hours, settings.lateness_days),
            credentials_check=credentials if optimizely is not None else None,
        ).run()
    for s in steps:
        print(f"{'ok  ' if s.ok else 'FAIL'}  {s.name:<34} {s.seconds:5.1f}s  {s.detail}")
    return 0 if all(s.ok for s in steps) else 1
