"""Past one machine: the Kubernetes instance configuration and the image definition.

Nothing here can start a cluster or build an image; what can be checked is that the instance
configuration is valid for Dagster, that its run launcher is dagster-k8s's and loads, that its
pool limits are the ones the project's own guard demands, and that the image installs the
package this repository builds.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import tomllib
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config

from optimizely_assets.assets.analysis import UNITS_POOL
from optimizely_assets.assets.keys import canonical_pool
from optimizely_assets.concurrency import pool_problems
from optimizely_assets.e3.layout import ExportType

REPO = Path(__file__).resolve().parents[1]
K8S_YAML = REPO / "deploy" / "k8s" / "dagster.yaml"
POOLS = [*(canonical_pool(t) for t in ExportType), UNITS_POOL]


def test_the_kubernetes_instance_config_is_valid_and_keeps_one_merge_per_table(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(K8S_YAML, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))  # the whole file against Dagster's schema
    assert (
        config["run_launcher"]["class"] == "K8sRunLauncher"
        and config["run_launcher"]["module"] == "dagster_k8s"
    )
    assert "postgres" in config["storage"]

    # The same file on a local store, so that it loads here: the launcher and the limits as written.
    local = yaml.safe_load(K8S_YAML.read_text())
    local["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(local))
    import kubernetes

    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda *a, **k: None)  # no cluster here
    for name in ("DAGSTER_K8S_NAMESPACE", "OPTIMIZELY_ASSETS_IMAGE"):
        monkeypatch.setenv(
            name, "optimizely" if "NAMESPACE" in name else "registry.example/optimizely-assets:1"
        )
    instance = DagsterInstance.from_config(str(home))
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "K8sRunLauncher"
        assert launcher.job_namespace == "optimizely" and launcher.job_image.endswith("optimizely-assets:1")
        assert "optimizely-assets" in launcher.env_secrets
        # The executor's own guard (concurrency.py) finds nothing to refuse on this configuration.
        assert pool_problems(instance, POOLS) == []
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 16
        assert instance.run_monitoring_enabled
    finally:
        instance.dispose()


def test_a_pool_limit_above_one_in_the_config_is_refused(tmp_path):
    local = yaml.safe_load(K8S_YAML.read_text())
    local["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    local.pop("run_launcher")
    local["concurrency"]["pools"]["default_limit"] = 2
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(local))
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        problems = pool_problems(instance, POOLS)
        assert len(problems) == len(POOLS) and "allows 2 concurrent steps" in problems[0]
    finally:
        instance.dispose()


def test_the_image_installs_the_package_this_repository_builds():
    dockerfile = (REPO / "Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {src for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for src in line.split()[:-1]}
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    # Everything the build reads is in the image: the metadata, its readme, every package directory.
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    assert {p.rstrip("*") for p in packages} <= copied
    (extra,) = re.findall(r'pip install "\.\[(\w+)\]"', dockerfile)
    assert extra in project["project"]["optional-dependencies"]
    assert any("dagster-k8s" in d for d in project["project"]["optional-dependencies"][extra])
    # It serves the module the local tools load.
    assert f'"-m", "{project["tool"]["dagster"]["module_name"]}"' in dockerfile


HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
MANIFESTS = REPO / "deploy" / "k8s" / "secret.example.yaml"


def test_every_deploy_file_is_valid_yaml():
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        assert list(yaml.safe_load_all(path.read_text())), path


def test_the_helm_values_run_this_image_privately_with_the_pools_and_nothing_secret(tmp_path):
    values = yaml.safe_load(HELM_VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "optimizely_assets.definitions"]
    # The UI has no login: inside the cluster only.
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert not values.get("ingress", {}).get("enabled", False)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["computeLogManager"]["type"] == "GCSComputeLogManager"
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert "iam.gke.io/gcp-service-account" in values["serviceAccount"]["annotations"]
    # Every Secret and ConfigMap the values name is among the manifests (placeholders only).
    manifests = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(MANIFESTS.read_text())}
    named = {
        ("Secret", values["global"]["postgresqlSecretName"]),
        *(("Secret", s["name"]) for s in deployment["envSecrets"]),
        *(("ConfigMap", c["name"]) for c in deployment["envConfigMaps"]),
    }
    assert named <= set(manifests)
    for (kind, _), doc in manifests.items():
        if kind == "Secret":
            assert all(v.startswith("<") and v.endswith(">") for v in doc["stringData"].values())

    def walk(node, path=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, (*path, str(k)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, (*path, str(i)))
        else:
            yield path, node

    secretive = [
        p for p, v in walk(values) if re.search(r"password|token|secret_key|apikey", p[-1], re.I) and v
    ]
    assert secretive == []
    # The instance config the chart adds (additionalInstanceConfig) passes the project's guard.
    local = {
        **values["additionalInstanceConfig"],
        "storage": {"sqlite": {"base_dir": str(tmp_path / "storage")}},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(local))
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert pool_problems(instance, POOLS) == []
    finally:
        instance.dispose()


def test_the_image_has_a_home_its_user_can_write():
    dockerfile = (REPO / "Dockerfile").read_text()
    home = re.search(r"^ENV DAGSTER_HOME=(\S+)", dockerfile, re.M)[1]
    assert 'chown -R dagster "$DAGSTER_HOME"' in dockerfile and home.startswith("/opt/")
    assert dockerfile.index("chown") < dockerfile.index("USER dagster")
