"""llama.cpp groups: ``rpc-server`` workers lend their memory and compute to one ``llama-server``
leader (``--rpc host:port,...``), which splits the model's layers over them and itself.

Documented flags (llama.cpp ``tools/rpc/README.md`` and ``--help`` of both programs):
``rpc-server --host --port --threads``; ``llama-server --rpc --n-gpu-layers --tensor-split``.
The workers never read the model file: the leader sends them their tensors.
"""

from __future__ import annotations

from inferlab.coordinator.launch.common import Programs, Target
from inferlab.coordinator.spec import DeploymentSpec, GroupPlan, RankResources, RankSpec

POD_HTTP_PORT = 8080
POD_RPC_PORT = 50052
ALL_LAYERS = "999"  # offload every layer to the RPC devices (they split them by free memory)


def leader_argv(spec: DeploymentSpec, server: str, *, host: str, port: str, rpc: str) -> list[str]:
    argv = [
        server, "--model", spec.model, "--host", host, "--port", port,
        "--ctx-size", str(spec.context * spec.max_sequences), "--parallel", str(spec.max_sequences),
        "--alias", spec.name, "--metrics", "--slots", "--no-webui", "--cache-reuse", "256",
    ]
    if spec.parallel.rpc_workers:
        argv += ["--rpc", rpc, "--n-gpu-layers", ALL_LAYERS]
    if spec.kv_cache_dtype:
        argv += ["--cache-type-k", spec.kv_cache_dtype, "--cache-type-v", spec.kv_cache_dtype]
    if spec.threads:
        argv += ["--threads", str(spec.threads)]
    return argv + list(spec.extra_args)


def worker_argv(spec: DeploymentSpec, rpc_server: str, *, host: str, port: str) -> list[str]:
    argv = [rpc_server, "--host", host, "--port", port]
    if spec.threads:
        argv += ["--threads", str(spec.threads)]
    return argv


def _pod_rpc_peers(spec: DeploymentSpec, name: str) -> str:
    """Workers of a LeaderWorkerSet group are ``<leader pod>-<i>`` under the set's headless service."""
    return ",".join(f"$(POD_NAME)-{i}.{name}:{POD_RPC_PORT}" for i in range(1, spec.parallel.rpc_workers + 1))


def llamacpp_group(spec: DeploymentSpec, name: str, *, target: Target, programs: Programs,
                   api_key: str | None) -> GroupPlan:
    env = (("LLAMA_API_KEY", api_key),) if api_key else ()
    worker_resources = RankResources(gpus=spec.resources.gpus, cpus=spec.resources.cpus,
                                     memory_gib=spec.resources.memory_gib)
    if target == "process":
        leader = leader_argv(spec, programs.llama_server, host="{host}", port="{port}", rpc="{rpc}")
        worker = worker_argv(spec, programs.rpc_server, host="{host}", port="{port}")
        leader_port, worker_port = None, None
    else:
        leader = leader_argv(spec, programs.llama_server, host="0.0.0.0", port=str(POD_HTTP_PORT),
                             rpc=_pod_rpc_peers(spec, name))
        worker = worker_argv(spec, programs.rpc_server, host="0.0.0.0", port=str(POD_RPC_PORT))
        leader_port, worker_port = POD_HTTP_PORT, POD_RPC_PORT
    ranks = [RankSpec(i, "worker", tuple(worker), "tcp", resources=worker_resources, port=worker_port)
             for i in range(1, spec.parallel.rpc_workers + 1)]
    ranks.append(RankSpec(0, "leader", tuple(leader), "http", "/health", env, spec.resources, leader_port))
    notes = ((f"llama.cpp RPC: the leader splits the layers over itself and {spec.parallel.rpc_workers} rpc-server"
              " workers in proportion to their free memory"),) if spec.parallel.rpc_workers else ()
    return GroupPlan(name, "llama.cpp", tuple(ranks), api_key, spec.placement, notes)
