"""Knobs of the loader itself, as a resource so the UI's launchpad shows and edits them."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field


class LoaderConfig(ConfigurableResource):
    require_success: bool = Field(
        default=True,
        description="Refuse a day until its _SUCCESS marker exists (like CAIO's --require-success).",
    )
    allow_missing_columns: bool = Field(
        default=False, description="Load files that lack a nullable column as NULLs instead of failing."
    )
    bad_files: Literal["fail", "quarantine"] = Field(
        default="fail",
        description=(
            "A corrupt, empty, truncated or schema-breaking file fails its day (nothing loaded), or with "
            "'quarantine' is copied to staging's _quarantine/ and the rest of the day is loaded."
        ),
    )
    footer_workers: int | None = Field(
        default=None,
        ge=1,
        description="Parallel footer reads (one ranged GET each). Unset: 16 from S3, 1 from a local directory.",
    )
    copy_workers: int | None = Field(
        default=None,
        ge=1,
        description="Parallel streamed copies to staging. Unset: 8 when the source or staging is remote, else 1.",
    )
    copy_attempts: int = Field(default=4, description="Attempts per file copy before the day fails.")
    dedup_horizon_days: int = Field(
        default=30,
        ge=0,
        description=(
            "A uuid re-sent within this many export days of its first load is never inserted twice, "
            "whatever its timestamps. A day's MERGE and checks read 2N+1 canonical partitions."
        ),
    )
    allow_empty_day: bool = Field(
        default=False,
        description=(
            "A day that already holds rows and comes back with no files fails (nothing is replaced) "
            "unless this is set for that run."
        ),
    )
    freshness_sla_hours: float = Field(
        default=36.0,
        description="The fresh_after_success check warns when a day is checked this long after its _SUCCESS.",
    )

    # A remote store is latency-bound: many requests in flight. A local directory is CPU-bound in
    # Python, where threads only contend for the GIL (2,000 local footers: 1.1 s on 1 thread,
    # 1.3 s on 8, 1.65 s on 16).
    def footers_in_flight(self, remote_source: bool) -> int:
        return self.footer_workers or (16 if remote_source else 1)

    def copies_in_flight(self, remote_source: bool, remote_staging: bool) -> int:
        return self.copy_workers or (8 if remote_source or remote_staging else 1)
