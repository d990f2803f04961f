"""Engine command lines generated from one spec use only each engine's documented flags.

The flag lists are each engine's documentation, written down here with where it says so:
- vLLM: `vllm serve --help` / the engine arguments page (docs.vllm.ai, "Engine Arguments") and
  "Distributed Inference and Serving" (Ray across nodes: `ray start --head`, `ray start --address`).
- SGLang: "Server Arguments" and "Multi-Node Deployment" (docs.sglang.io).
- llama.cpp: `llama-server --help` and tools/rpc/README.md (`rpc-server --host --port`); the
  RPC programs themselves are asked in tests/e2e/test_engine_group_rpc.py.
"""

from __future__ import annotations

import pytest

from inferlab.coordinator.launch import group_plan
from inferlab.coordinator.spec import DeploymentSpec, GroupParallelism, RankResources

VLLM_SERVE = {
    "--host", "--port", "--served-model-name", "--tensor-parallel-size", "--pipeline-parallel-size",
    "--distributed-executor-backend", "--max-model-len", "--max-num-seqs", "--quantization", "--kv-cache-dtype",
    "--gpu-memory-utilization",
}
SGLANG_LAUNCH = {
    "--model-path", "--served-model-name", "--tp", "--pp-size", "--nnodes", "--node-rank", "--dist-init-addr",
    "--host", "--port", "--context-length", "--max-running-requests", "--quantization", "--kv-cache-dtype",
    "--mem-fraction-static", "--api-key",
}
LLAMA_SERVER = {
    "--model", "--host", "--port", "--ctx-size", "--parallel", "--alias", "--metrics", "--slots", "--no-webui",
    "--cache-reuse", "--rpc", "--n-gpu-layers", "--cache-type-k", "--cache-type-v", "--threads",
}
RPC_SERVER = {"--host", "--port", "--threads"}


def _flags(argv: list[str] | tuple[str, ...]) -> set[str]:
    return {arg for arg in argv if arg.startswith("--")}


def _spec(engine: str, **parallel: int) -> DeploymentSpec:
    return DeploymentSpec(name="m", model="/models/m", engine=engine,  # type: ignore[arg-type]
                          parallel=GroupParallelism(**parallel), resources=RankResources(gpus=8), context=8192,
                          max_sequences=64, quantization="fp8" if engine != "llama.cpp" else None,
                          kv_cache_dtype="fp8" if engine != "llama.cpp" else "q8_0", gpu_memory_utilization=0.9,
                          threads=2)


@pytest.mark.parametrize("target", ["process", "pod"])
def test_vllm_within_one_node_is_one_process_with_tensor_parallel(target: str) -> None:
    plan = group_plan(_spec("vllm", tensor=4), "m", target=target)  # type: ignore[arg-type]
    (leader,) = plan.ranks
    assert leader.argv[:3] == ("vllm", "serve", "/models/m")
    assert _flags(leader.argv) <= VLLM_SERVE
    assert leader.argv[leader.argv.index("--tensor-parallel-size") + 1] == "4"
    assert "--distributed-executor-backend" not in leader.argv
    assert leader.resources.gpus == 4


def test_vllm_across_nodes_uses_ray_with_tp_in_a_node_and_pp_across() -> None:
    process = group_plan(_spec("vllm", tensor=8, pipeline=2, nodes=2), "m", target="process", api_key="k",
                         ray_address="10.0.0.1:6379")
    (leader,) = process.ranks  # vLLM places its own ranks on the Ray cluster
    assert _flags(leader.argv) <= VLLM_SERVE
    assert leader.argv[leader.argv.index("--distributed-executor-backend") + 1] == "ray"
    assert leader.argv[leader.argv.index("--pipeline-parallel-size") + 1] == "2"
    assert dict(leader.env) == {"VLLM_API_KEY": "k", "RAY_ADDRESS": "10.0.0.1:6379"}
    pod = group_plan(_spec("vllm", tensor=8, pipeline=2, nodes=2), "m", target="pod")
    worker, head = pod.ranks
    assert worker.argv == ("sh", "-c", "ray start --address=$(LWS_LEADER_ADDRESS):6379 --block")
    script = head.argv[2]
    assert script.startswith("ray start --head --port=6379 && ")
    serve = script.rsplit("exec ", 1)[1].split()
    assert serve[:3] == ["vllm", "serve", "/models/m"] and _flags(serve) <= VLLM_SERVE
    assert worker.resources.gpus == head.resources.gpus == 8


def test_sglang_multi_node_gives_every_node_its_rank_and_the_leader_address() -> None:
    plan = group_plan(_spec("sglang", tensor=16, nodes=2), "m", target="pod", api_key="k")
    worker, leader = plan.ranks
    for rank, node_rank in ((leader, "0"), (worker, "1")):
        assert rank.argv[:3] == ("python3", "-m", "sglang.launch_server")
        assert _flags(rank.argv) <= SGLANG_LAUNCH
        assert rank.argv[rank.argv.index("--node-rank") + 1] == node_rank
        assert rank.argv[rank.argv.index("--nnodes") + 1] == "2"
        assert rank.argv[rank.argv.index("--tp") + 1] == "16"
        assert rank.argv[rank.argv.index("--dist-init-addr") + 1] == "$(LWS_LEADER_ADDRESS):20000"
    assert leader.argv[-2:] == ("--api-key", "$(INFERLAB_ENGINE_KEY)")  # the key from the pod's env, not the manifest
    assert dict(leader.env) == {"INFERLAB_ENGINE_KEY": "k"}


def test_llama_cpp_rpc_group_starts_workers_then_a_leader_that_names_them() -> None:
    plan = group_plan(_spec("llama.cpp", rpc_workers=2), "m", target="process", api_key="k")
    assert [rank.role for rank in plan.ranks] == ["worker", "worker", "leader"]
    for worker in plan.workers:
        assert worker.argv[0] == "rpc-server" and _flags(worker.argv) <= RPC_SERVER and worker.readiness == "tcp"
    leader = plan.leader
    assert _flags(leader.argv) <= LLAMA_SERVER
    assert leader.argv[leader.argv.index("--rpc") + 1] == "{rpc}"  # filled with the workers' host:port at start
    assert dict(leader.env) == {"LLAMA_API_KEY": "k"}
    pod = group_plan(_spec("llama.cpp", rpc_workers=2), "m", target="pod")
    rpc = pod.leader.argv[pod.leader.argv.index("--rpc") + 1]
    assert rpc == "$(POD_NAME)-1.m:50052,$(POD_NAME)-2.m:50052"


def test_specs_refuse_what_their_engine_cannot_do() -> None:
    with pytest.raises(ValueError, match=r"rpc_workers is a llama\.cpp setting"):
        DeploymentSpec(name="m", model="m", engine="vllm", parallel=GroupParallelism(rpc_workers=1))
    with pytest.raises(ValueError, match="do not divide evenly"):
        GroupParallelism(tensor=3, nodes=2)
