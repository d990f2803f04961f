"""A deployment spec as Kubernetes objects (plain dicts, offline).

- A group of one rank is a ``Deployment`` (``replicas`` copies), a group of several ranks a
  ``LeaderWorkerSet`` (one group per replica, ``size`` pods each; a pod that restarts recreates its
  whole group: ``RecreateGroupOnPodRestart``, the group is not half-alive).
- A ``Service`` in front of the leaders (HTTP), and a ``PodDisruptionBudget`` so a drain takes one
  pod of the engine at a time.
- Probes on the leader's ``/health``: a long startup probe (weights load for minutes), then
  readiness (out of the Service while it fails) and liveness (restart when it hangs); TCP probes on
  ``rpc-server`` workers.
- Secrets are referenced, never rendered: the engine's API key comes from the Secret
  ``<name>-engine-key`` (key ``api-key``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from inferlab.coordinator.launch import group_plan
from inferlab.coordinator.spec import DeploymentSpec, GroupPlan, RankResources, RankSpec

KEY_PLACEHOLDER = "__inferlab_engine_key__"
LWS_API = "leaderworkerset.x-k8s.io/v1"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
DEFAULT_IMAGES = {"llama.cpp": "ghcr.io/ggml-org/llama.cpp:full-cuda", "vllm": "vllm/vllm-openai:latest",
                  "sglang": "lmsysorg/sglang:latest"}
WAIT_IMAGE = "busybox:1.36"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class RenderOptions:
    namespace: str = "inferlab"
    models_claim: str = "inferlab-models"  # a PersistentVolumeClaim holding the weights, mounted at /models
    gpu_resource: str = "nvidia.com/gpu"
    api_key: bool = True  # the engine requires the key from the Secret <name>-engine-key


def k8s_name(name: str) -> str:
    """A DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 40
    characters (LeaderWorkerSet pod names add suffixes)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "m-" + cleaned
    return cleaned[:40].rstrip("-")


def render_group(spec: DeploymentSpec, options: RenderOptions = RenderOptions()) -> list[Manifest]:
    name = k8s_name(spec.name)
    plan = group_plan(spec, name, target="pod", api_key=KEY_PLACEHOLDER if options.api_key else None)
    labels = {"app.kubernetes.io/name": "inferlab-engine", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/component": "engine", "app.kubernetes.io/managed-by": "inferlab"}
    leader = plan.leader
    image = spec.image or DEFAULT_IMAGES[spec.engine]
    if len(plan.ranks) == 1:
        workload = _deployment(spec, name, labels, _pod(leader, plan, name, image, options))
        selector = labels
    else:
        worker = plan.workers[0]
        workload = _leader_worker_set(spec, name, labels, _pod(leader, plan, name, image, options),
                                      _pod(worker, plan, name, image, options), len(plan.ranks))
        selector = {**labels, WORKER_INDEX_LABEL: "0"}
    port = leader.port or 8000
    return [workload, _service(name, options.namespace, labels, selector, port), _pdb(name, options.namespace, labels)]


def _meta(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def _deployment(spec: DeploymentSpec, name: str, labels: dict[str, str], pod: Manifest) -> Manifest:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, pod["metadata"].pop("namespace"), labels),
        "spec": {
            "replicas": spec.replicas, "selector": {"matchLabels": dict(labels)},
            # GPUs are scarce: replace one copy at a time rather than asking for a spare set
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": pod,
        },
    }


def _leader_worker_set(spec: DeploymentSpec, name: str, labels: dict[str, str], leader: Manifest,
                       worker: Manifest, size: int) -> Manifest:
    namespace = leader["metadata"].pop("namespace")
    worker["metadata"].pop("namespace")
    return {
        "apiVersion": LWS_API, "kind": "LeaderWorkerSet", "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": spec.replicas, "startupPolicy": "LeaderCreated",
            "rolloutStrategy": {"type": "RollingUpdate",
                                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0}},
            "leaderWorkerTemplate": {"size": size, "restartPolicy": "RecreateGroupOnPodRestart",
                                     "leaderTemplate": leader, "workerTemplate": worker},
        },
    }


def _service(name: str, namespace: str, labels: dict[str, str], selector: dict[str, str], port: int) -> Manifest:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(f"{name}-http", namespace, labels),
        "spec": {"type": "ClusterIP", "selector": dict(selector),
                 "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]},
    }


def _pdb(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(name, namespace, labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}},
    }


def _resources(resources: RankResources, gpu_resource: str) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": f"{resources.cpus:g}"}
    limits: dict[str, Any] = {}
    if resources.memory_gib:
        requests["memory"] = limits["memory"] = f"{resources.memory_gib:g}Gi"
    if resources.gpus:
        requests[gpu_resource] = limits[gpu_resource] = resources.gpus
    return {"requests": requests, "limits": limits} if limits else {"requests": requests}


def _env(rank: RankSpec, name: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for key, value in rank.env:
        if value == KEY_PLACEHOLDER:
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": f"{name}-engine-key", "key": "api-key"}}})
        else:
            env.append({"name": key, "value": value})
    return env


def _probes(rank: RankSpec) -> dict[str, Any]:
    if rank.readiness == "http":
        check = {"httpGet": {"path": rank.health_path, "port": "http"}}
    elif rank.readiness == "tcp":
        check = {"tcpSocket": {"port": "rpc"}}
    else:
        return {}
    return {
        "startupProbe": {**check, "periodSeconds": 10, "failureThreshold": 180},  # up to 30 min to load
        "readinessProbe": {**check, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {**check, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
    }


GRACE_S = 60  # terminationGracePeriodSeconds: the preStop drain below fits in it
DRAIN_S = GRACE_S - 10


def _drain_before_stop(rank: RankSpec) -> dict[str, Any]:
    """A llama-server scaled down (the autoscaler's scale subresource, a rollout) finishes its
    requests first: preStop waits for the endpoints controller to take the pod out of its Service,
    then until the engine reports no request processing (``/metrics``), at most ``DRAIN_S``."""
    if rank.role != "leader" or rank.readiness != "http" or not rank.port or "llama-server" not in rank.argv[0]:
        return {}
    idle = r"^llamacpp:requests_processing 0(\.0+)?$"
    script = (f"sleep 5; end=$(( $(date +%s) + {DRAIN_S - 5} )); while [ $(date +%s) -lt $end ]; do "
              f"curl -sf -H \"Authorization: Bearer ${{LLAMA_API_KEY:-}}\" http://127.0.0.1:{rank.port}/metrics "
              f"| grep -Eq '{idle}' && exit 0; sleep 1; done")
    return {"lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", script]}}}}


def _container(rank: RankSpec, name: str, image: str, options: RenderOptions) -> dict[str, Any]:
    port_name = "http" if rank.role == "leader" else "rpc"
    container: dict[str, Any] = {
        "name": "engine" if rank.role == "leader" else "worker", "image": image,
        "command": [rank.argv[0]], "args": list(rank.argv[1:]), "env": _env(rank, name),
        "resources": _resources(rank.resources, options.gpu_resource),
        "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
        **_probes(rank),
        **_drain_before_stop(rank),
    }
    if rank.port:
        container["ports"] = [{"name": port_name, "containerPort": rank.port, "protocol": "TCP"}]
    if rank.resources.shm_gib:
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    return container


def _pod(rank: RankSpec, plan: GroupPlan, name: str, image: str, options: RenderOptions) -> Manifest:
    volumes: list[dict[str, Any]] = [
        {"name": "models", "persistentVolumeClaim": {"claimName": options.models_claim, "readOnly": True}}]
    if rank.resources.shm_gib:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{rank.resources.shm_gib:g}Gi"}})
    spec: dict[str, Any] = {"containers": [_container(rank, name, image, options)], "volumes": volumes,
                            "terminationGracePeriodSeconds": GRACE_S}
    peers = [worker for worker in plan.workers if worker.readiness == "tcp" and worker.port]
    if rank.role == "leader" and peers:
        spec["initContainers"] = [_wait_for_workers(plan, name, peers[0].port or 0)]
    return {"metadata": {"namespace": options.namespace, "labels": {}}, "spec": spec}


def _wait_for_workers(plan: GroupPlan, name: str, port: int) -> dict[str, Any]:
    """llama.cpp's leader needs every rpc-server listening before it starts: wait for them."""
    hosts = " ".join(f"$(POD_NAME)-{worker.index}.{name}" for worker in plan.workers)
    script = f"for host in {hosts}; do until nc -z $host {port}; do sleep 2; done; done"
    return {"name": "wait-for-workers", "image": WAIT_IMAGE, "command": ["sh", "-c", script],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
