"""vLLM groups. Within one node: one process, ``--tensor-parallel-size`` (and
``--pipeline-parallel-size``) over its GPUs. Across nodes: a Ray cluster spans the nodes and the
leader's ``vllm serve`` places every rank on it (``--distributed-executor-backend ray``), the
usual layout being tensor parallel within a node and pipeline parallel across nodes.

Here (``process``) the Ray cluster already exists and the leader joins it through ``RAY_ADDRESS``;
in Kubernetes (``pod``, a LeaderWorkerSet) the leader starts a Ray head, each worker joins it
(``ray start --address=$(LWS_LEADER_ADDRESS):6379 --block``), and the leader serves once the
group's nodes have all joined. vLLM reads its API key from ``VLLM_API_KEY``.
"""

from __future__ import annotations

from inferlab.coordinator.launch.common import Programs, Target
from inferlab.coordinator.spec import DeploymentSpec, GroupPlan, RankResources, RankSpec

POD_HTTP_PORT = 8000
RAY_PORT = 6379

# The leader of a multi-node pod group waits until every node of the group joined its Ray cluster.
_WAIT_FOR_NODES = (
    "import os, time, ray\n"
    "ray.init(address='auto')\n"
    "while sum(node['Alive'] for node in ray.nodes()) < int(os.environ['LWS_GROUP_SIZE']):\n"
    "    time.sleep(2)\n"
)


def serve_argv(spec: DeploymentSpec, vllm: str, *, host: str, port: str) -> list[str]:
    p = spec.parallel
    argv = [vllm, "serve", spec.model, "--host", host, "--port", port, "--served-model-name", spec.name,
            "--tensor-parallel-size", str(p.tensor), "--max-model-len", str(spec.context),
            "--max-num-seqs", str(spec.max_sequences)]
    if p.pipeline > 1:
        argv += ["--pipeline-parallel-size", str(p.pipeline)]
    if p.nodes > 1:
        argv += ["--distributed-executor-backend", "ray"]
    if spec.quantization:
        argv += ["--quantization", spec.quantization]
    if spec.kv_cache_dtype:
        argv += ["--kv-cache-dtype", spec.kv_cache_dtype]
    if spec.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", f"{spec.gpu_memory_utilization:g}"]
    return argv + list(spec.extra_args)


def _shell(*commands: str) -> tuple[str, ...]:
    return ("sh", "-c", " && ".join(commands))


def _quote(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(arg) if not arg.startswith("$(") else arg for arg in argv)


def vllm_group(spec: DeploymentSpec, name: str, *, target: Target, programs: Programs, api_key: str | None,
               ray_address: str | None) -> GroupPlan:
    env: list[tuple[str, str]] = [("VLLM_API_KEY", api_key)] if api_key else []
    per_node = RankResources(gpus=spec.parallel.devices_per_node, cpus=spec.resources.cpus,
                             memory_gib=spec.resources.memory_gib, shm_gib=spec.resources.shm_gib)
    multi_node = spec.parallel.nodes > 1
    if target == "process":
        if multi_node and ray_address:
            env.append(("RAY_ADDRESS", ray_address))
        argv = tuple(serve_argv(spec, programs.vllm, host="{host}", port="{port}"))
        # across nodes vLLM reserves the GPUs itself (its own Ray placement group): the leader asks only CPUs
        resources = RankResources(cpus=spec.resources.cpus) if multi_node else per_node
        leader = RankSpec(0, "leader", argv, "http", "/health", tuple(env), resources)
        return GroupPlan(name, "vllm", (leader,), api_key, spec.placement, _notes(spec))
    serve_pod = serve_argv(spec, programs.vllm, host="0.0.0.0", port=str(POD_HTTP_PORT))
    if not multi_node:
        leader = RankSpec(0, "leader", tuple(serve_pod), "http", "/health", tuple(env), per_node, POD_HTTP_PORT)
        return GroupPlan(name, "vllm", (leader,), api_key, spec.placement, _notes(spec))
    serve = _quote(serve_pod)
    head = _shell(f"ray start --head --port={RAY_PORT}", f"{programs.python} -c {_quote([_WAIT_FOR_NODES])}",
                  "exec " + serve)
    join = _shell(f"ray start --address=$(LWS_LEADER_ADDRESS):{RAY_PORT} --block")
    workers = [RankSpec(i, "worker", join, "none", resources=per_node) for i in range(1, spec.parallel.nodes)]
    leader = RankSpec(0, "leader", head, "http", "/health", tuple(env), per_node, POD_HTTP_PORT)
    return GroupPlan(name, "vllm", (*workers, leader), api_key, spec.placement, _notes(spec))


def _notes(spec: DeploymentSpec) -> tuple[str, ...]:
    p = spec.parallel
    if p.nodes == 1:
        return (f"vLLM: tensor parallel {p.tensor} x pipeline parallel {p.pipeline} on one node",)
    return ((f"vLLM over Ray: {p.devices} GPUs on {p.nodes} nodes ({p.devices_per_node} per node), tensor parallel"
             f" {p.tensor} x pipeline parallel {p.pipeline}"),)
