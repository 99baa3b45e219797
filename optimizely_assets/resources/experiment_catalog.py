"""Experiment and variation names, and traffic weights, for the results tables.

``RestExperimentCatalog`` reads Optimizely's REST API, ``GET {api}/experiments/{experiment_id}``,
with the same personal access token as the export credentials. Full Stack experiments are named
by ``key``, Web ones by ``name``; ``variations[].weight`` (basis points) is the traffic allocation
the SRM check expects. Offline, ``OfflineExperimentCatalog`` names experiments after the
synthetic export's names where it knows them, else after their ids.
"""

from __future__ import annotations

import json
import time

from dagster import ConfigurableResource
from pydantic import Field

from optimizely_assets.resources.bounded_http import bounded_get, get_with_retries
from optimizely_assets.warehouse.analysis import ExperimentRow

MAX_BODY_BYTES = 4 * 1024 * 1024  # one experiment's JSON is kilobytes; an endless answer is cut here


class CatalogError(RuntimeError):
    pass


class ExperimentCatalog(ConfigurableResource):
    def lookup(self, experiments: dict[str, list[str]]) -> tuple[list[ExperimentRow], list[str]]:
        """``experiments``: experiment id -> the variation ids seen in units. One row per variation,
        and the problems met. Names decorate the results: an unreachable API falls back to ids."""
        raise NotImplementedError


def _id_rows(experiment_id: str, variations: list[str], source: str = "ids") -> list[ExperimentRow]:
    return [ExperimentRow(experiment_id, None, v, None, None, source) for v in variations]


class OfflineExperimentCatalog(ExperimentCatalog):
    def lookup(self, experiments: dict[str, list[str]]) -> tuple[list[ExperimentRow], list[str]]:
        from optimizely_assets.demo.experiments import synthetic_experiment_names

        known = synthetic_experiment_names()
        rows: list[ExperimentRow] = []
        for experiment_id, variations in sorted(experiments.items()):
            if experiment_id not in known:
                rows += _id_rows(experiment_id, variations)
                continue
            name, variation_names = known[experiment_id]
            for v in variations:
                rows.append(
                    ExperimentRow(experiment_id, name, v, variation_names.get(v), 5000.0, "synthetic")
                )
        return rows, []


class RestExperimentCatalog(ExperimentCatalog):
    personal_access_token: str = Field(description="Optimizely PAT; set from EnvVar('OPTIMIZELY_PAT').")
    api_url: str = Field(
        default="https://api.optimizely.com/v2", description="Optimizely REST API v2 base URL."
    )
    timeout_seconds: float = Field(
        default=60.0, description="Total deadline of one lookup (every experiment, retries included)."
    )
    attempts: int = Field(default=4, description="Attempts per experiment on 5xx, 429 and network errors.")

    def _get(self, experiment_id: str, deadline: float) -> dict | None:
        url = f"{self.api_url.rstrip('/')}/experiments/{experiment_id}"
        headers = {
            "Authorization": f"Bearer {self.personal_access_token.strip()}",
            "Accept": "application/json",
        }
        answer = get_with_retries(
            lambda remaining: bounded_get(url, headers=headers, seconds=remaining, max_bytes=MAX_BODY_BYTES),
            deadline,
            self.attempts,
            self.timeout_seconds,
            whose="the lookup's ",
        )
        if isinstance(answer, str):
            raise CatalogError(f"{url}: {answer}")
        status, body = answer
        if status in (403, 404):  # deleted, or another project's: fall back to the id
            return None
        if status == 401:
            raise CatalogError(f"{url}: 401 Unauthorized; OPTIMIZELY_PAT is not accepted by the REST API")
        if status != 200:
            raise CatalogError(f"{url}: HTTP {status}")
        try:
            return json.loads(body)
        except ValueError:
            raise CatalogError(f"{url}: answered non-JSON") from None

    def lookup(self, experiments: dict[str, list[str]]) -> tuple[list[ExperimentRow], list[str]]:
        rows: list[ExperimentRow] = []
        errors: list[str] = []
        deadline = time.monotonic() + self.timeout_seconds
        for experiment_id, seen in sorted(experiments.items()):
            try:
                if deadline <= time.monotonic():
                    raise CatalogError(
                        f"experiment {experiment_id}: the lookup's {self.timeout_seconds:g} s had passed"
                    )
                body = self._get(experiment_id, deadline)
            except CatalogError as exc:
                errors.append(str(exc))
                body = None
            if not isinstance(body, dict):
                rows += _id_rows(experiment_id, seen)
                continue
            name = body.get("name") or body.get("key")
            listed = {
                str(v.get("variation_id")): v
                for v in body.get("variations") or []
                if v.get("variation_id") is not None
            }
            first = next(iter(listed), None)  # Optimizely lists the original variation first
            for v in sorted(set(seen) | set(listed)):
                info = listed.get(v, {})
                weight = info.get("weight")
                rows.append(
                    ExperimentRow(
                        experiment_id,
                        name,
                        v,
                        info.get("name") or info.get("key"),
                        float(weight) if isinstance(weight, (int, float)) else None,
                        "api",
                        v == first,
                    )
                )
        return rows, errors
