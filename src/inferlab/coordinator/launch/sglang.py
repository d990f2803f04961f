"""SGLang groups: every node runs ``sglang.launch_server`` with the same ``--tp`` (all GPUs of the
group) and ``--nnodes``, its own ``--node-rank``, and the leader's ``--dist-init-addr``; node rank 0
serves HTTP. Documented in SGLang's multi-node deployment guide and server arguments.
"""

from __future__ import annotations

from inferlab.coordinator.launch.common import Programs, Target
from inferlab.coordinator.spec import DeploymentSpec, GroupPlan, RankResources, RankSpec

POD_HTTP_PORT = 30000
DIST_INIT_PORT = 20000


def launch_argv(spec: DeploymentSpec, python: str, *, rank: int, host: str, port: str, leader: str) -> list[str]:
    p = spec.parallel
    argv = [python, "-m", "sglang.launch_server", "--model-path", spec.model, "--served-model-name", spec.name,
            "--tp", str(p.tensor), "--context-length", str(spec.context),
            "--max-running-requests", str(spec.max_sequences), "--host", host, "--port", port]
    if p.pipeline > 1:
        argv += ["--pp-size", str(p.pipeline)]
    if p.nodes > 1:
        argv += ["--nnodes", str(p.nodes), "--node-rank", str(rank), "--dist-init-addr", f"{leader}:{DIST_INIT_PORT}"]
    if spec.quantization:
        argv += ["--quantization", spec.quantization]
    if spec.kv_cache_dtype:
        argv += ["--kv-cache-dtype", spec.kv_cache_dtype]
    if spec.gpu_memory_utilization is not None:
        argv += ["--mem-fraction-static", f"{spec.gpu_memory_utilization:g}"]
    return argv + list(spec.extra_args)


def sglang_group(spec: DeploymentSpec, name: str, *, target: Target, programs: Programs,
                 api_key: str | None) -> GroupPlan:
    per_node = RankResources(gpus=spec.parallel.devices_per_node, cpus=spec.resources.cpus,
                             memory_gib=spec.resources.memory_gib, shm_gib=spec.resources.shm_gib)
    if target == "process":
        host, port, leader, fixed = "{host}", "{port}", "{leader_host}", None
    else:
        host, port, leader, fixed = "0.0.0.0", str(POD_HTTP_PORT), "$(LWS_LEADER_ADDRESS)", POD_HTTP_PORT
    key = ["--api-key", "$(INFERLAB_ENGINE_KEY)" if target == "pod" else api_key] if api_key else []
    env = (("INFERLAB_ENGINE_KEY", api_key),) if api_key and target == "pod" else ()
    ranks = [RankSpec(i, "worker", tuple(launch_argv(spec, programs.python, rank=i, host=host, port=port,
                                                     leader=leader)), "none", resources=per_node)
             for i in range(1, spec.parallel.nodes)]
    leader_argv = launch_argv(spec, programs.python, rank=0, host=host, port=port, leader=leader) + key
    ranks.append(RankSpec(0, "leader", tuple(leader_argv), "http", "/health", env, per_node, fixed))
    p = spec.parallel
    notes = (f"SGLang: --tp {p.tensor} over {p.nodes} node(s), {p.devices_per_node} GPUs each",)
    return GroupPlan(name, "sglang", tuple(ranks), api_key, spec.placement, notes)
