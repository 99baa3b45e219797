"""Experiment and variation names, and traffic weights, for the results tables.

``RestExperimentCatalog`` reads Optimizely's REST API, ``GET {api}/experiments/{experiment_id}``,
with the same personal access token as the export credentials. Full Stack experiments are named
by ``key``, Web ones by ``name``; ``variations[].weight`` (basis points) is the traffic allocation
the SRM check expects. Offline, ``OfflineExperimentCatalog`` names experiments after the
synthetic export's names where it knows them, else after their ids.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dagster import ConfigurableResource
from pydantic import Field

from optimizely_assets.warehouse.analysis import ExperimentRow


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
    timeout_seconds: float = Field(default=20.0, description="Per-request timeout.")

    def _get(self, experiment_id: str) -> dict | None:
        url = f"{self.api_url.rstrip('/')}/experiments/{experiment_id}"
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": f"Bearer {self.personal_access_token.strip()}",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404):  # deleted, or another project's: fall back to the id
                return None
            if exc.code == 401:
                raise CatalogError(
                    f"{url}: 401 Unauthorized; OPTIMIZELY_PAT is not accepted by the REST API"
                ) from None
            raise CatalogError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise CatalogError(f"{url}: {type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None

    def lookup(self, experiments: dict[str, list[str]]) -> tuple[list[ExperimentRow], list[str]]:
        rows: list[ExperimentRow] = []
        errors: list[str] = []
        for experiment_id, seen in sorted(experiments.items()):
            try:
                body = self._get(experiment_id)
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
                    )
                )
        return rows, errors
