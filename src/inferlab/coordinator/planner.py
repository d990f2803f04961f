"""``inferlab deploy plan``: from the planning toolkit's sizing to the engine spec that runs it.

Given a model, an accelerator and a device count, it chooses the split (vLLM's rule: tensor
parallel within a node, pipeline parallel across nodes; SGLang: one tensor-parallel group over
every device; llama.cpp: layers over the devices of one process, and over ``rpc-server`` workers
across nodes), sizes memory per rank, the KV cache budget and the concurrent sequences it holds,
picks the engine's quantisation flags, and writes the exact command, each choice with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferlab.coordinator.launch import group_plan
from inferlab.coordinator.spec import DeploymentSpec, EngineName, GroupParallelism, GroupPlan, RankResources
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.collectives import link_for
from inferlab.planning.deployment import Deployment, resolve_deployment
from inferlab.planning.memory import MemoryEstimate, estimate_memory, max_batch, misfit_reason
from inferlab.planning.specs import GIB
from inferlab.planning.throughput import estimate_throughput

#: weight formats that vLLM and SGLang name in --quantization (a checkpoint in that format, or fp8 on the fly)
ENGINE_QUANTISATION = {"fp8": "fp8", "int4": "awq", "awq": "awq", "gptq": "gptq"}
KV_CACHE_FLAGS = {"vllm": {"fp8": "fp8"}, "sglang": {"fp8": "fp8_e4m3"},
                  "llama.cpp": {"q8_0": "q8_0", "q4_0": "q4_0"}}


@dataclass(frozen=True)
class EnginePlan:
    spec: DeploymentSpec
    group: GroupPlan  # the command lines (pod form: fixed ports, peers by name)
    fits: bool
    memory: MemoryEstimate
    kv_cache_gib_per_rank: float
    tokens_per_s: float  # one stream, predicted
    ttft_s: float | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class PlanRequest:
    model: str
    gpu: str
    gpus: int = 1
    engine: str = "vllm"
    quant: str | None = None
    kv_dtype: str = "f16"
    context: int = 8192
    gpus_per_node: int | None = None
    model_path: str | None = None  # what the engine loads; default: the model's Hugging Face id
    name: str | None = None


def _split(engine: str, gpus: int, per_node: int) -> tuple[int, int, int, str]:
    """(tensor, pipeline, nodes, why)."""
    nodes = math.ceil(gpus / per_node)
    if gpus % per_node and nodes > 1:
        raise ValueError(f"{gpus} GPUs do not fill whole nodes of {per_node}")
    if engine == "llama.cpp":
        why = ("one GPU: the whole model in one llama-server process" if gpus == 1 else
               "llama.cpp splits layers (pipeline) over the devices of one process" if nodes == 1 else
               f"llama.cpp splits layers over {nodes - 1} rpc-server workers (one per extra node) and the leader")
        return 1, gpus, nodes, why
    if engine == "sglang":
        return gpus, 1, nodes, f"SGLang: one tensor-parallel group of {gpus} GPUs over {nodes} node(s)"
    if nodes == 1:
        return gpus, 1, 1, f"tensor parallel {gpus} within one node: every layer split, one all-reduce per layer"
    return per_node, nodes, nodes, (f"tensor parallel {per_node} within each node (its fast link), pipeline"
                                    f" parallel {nodes} across nodes (only activations cross the network)")


def _deployment(catalogue: Catalogue, request: PlanRequest, tensor: int, pipeline: int) -> Deployment:
    return resolve_deployment(catalogue, model=request.model, gpu=request.gpu, quant=request.quant,
                              kv_dtype=request.kv_dtype, engine=request.engine, gpus=request.gpus,
                              tensor_parallel=tensor, pipeline_parallel=pipeline)


def plan_engine(catalogue: Catalogue, request: PlanRequest) -> EnginePlan:
    accelerator = catalogue.accelerator(request.gpu)
    per_node = request.gpus_per_node or min(request.gpus, accelerator.node_devices)
    tensor, pipeline, nodes, split_why = _split(request.engine, request.gpus, per_node)
    d = _deployment(catalogue, request, tensor, pipeline)
    memory = estimate_memory(catalogue, d, request.context)
    sequences = max(1, min(d.engine.default_max_batch if d.engine.family == "batched_server" else 4,
                           max_batch(catalogue, d, request.context).value))
    speed = estimate_throughput(catalogue, d, prompt_tokens=512, output_tokens=256)
    spec = _spec(catalogue, request, d, tensor, pipeline, nodes, per_node, sequences)
    group = group_plan(spec, spec.name, target="pod")
    kv_gib = memory.kv_pool / GIB
    reasons = [
        split_why,
        (f"memory per GPU: weights {memory.weights / GIB:.1f} GiB + activations {memory.compute / GIB:.1f} GiB"
         f" + runtime {memory.overhead / GIB:.1f} GiB of {memory.capacity / GIB:.1f} GiB"
         + (f"; the engine may use {memory.budget / GIB:.1f} GiB" if memory.budget < memory.capacity else "")),
        (f"KV cache budget {kv_gib:.1f} GiB per GPU = {memory.kv_pool / max(memory.kv_bytes_per_token, 1):,.0f}"
         f" tokens: {sequences} sequences of {request.context:,} tokens (--max-num-seqs / --parallel)"),
        _link_reason(catalogue, d, nodes),
        (f"predicted: {speed.tokens_per_s_per_stream:.1f} tokens/s per stream"
         + (f", TTFT {speed.ttft_s * 1000:.0f} ms for a 512-token prompt" if speed.ttft_s else "")),
        *_quant_reasons(request, d),
        *group.notes,
    ]
    misfit = misfit_reason(memory)
    if misfit:
        reasons.insert(0, misfit)
    return EnginePlan(spec, group, memory.fits, memory, kv_gib, speed.tokens_per_s_per_stream, speed.ttft_s,
                      tuple(reasons))


def _spec(catalogue: Catalogue, request: PlanRequest, d: Deployment, tensor: int, pipeline: int, nodes: int,
          per_node: int, sequences: int) -> DeploymentSpec:
    if request.engine not in ("llama.cpp", "vllm", "sglang"):
        raise ValueError(f"deploy plans are for llama.cpp, vllm or sglang, not {request.engine}")
    engine: EngineName = request.engine  # type: ignore[assignment]  # checked on the line above
    kv_flag = KV_CACHE_FLAGS.get(engine, {}).get(d.kv_dtype.name.lower())
    quant = ENGINE_QUANTISATION.get(d.weights.name.lower()) if engine != "llama.cpp" else None
    if quant and d.model.native_dtype and d.weights.name.lower() == d.model.native_dtype.lower():
        quant = None
    fraction = (catalogue.default(d.engine.pool_fraction_key) if d.engine.pool_fraction_key else None)
    parallel = (GroupParallelism(1, 1, 1, nodes - 1) if engine == "llama.cpp"
                else GroupParallelism(tensor, pipeline, nodes))
    return DeploymentSpec(
        name=request.name or d.model.id, model=request.model_path or _default_model_path(engine, d), engine=engine,
        parallel=parallel, resources=RankResources(gpus=per_node, cpus=max(4.0, 4.0 * per_node),
                                                   memory_gib=float(max(16, 16 * per_node)),
                                                   shm_gib=None if engine == "llama.cpp" else 16.0),
        context=request.context, max_sequences=sequences, quantization=quant, kv_cache_dtype=kv_flag,
        gpu_memory_utilization=fraction if engine != "llama.cpp" else None,
        extra_args=("--n-gpu-layers", "999") if engine == "llama.cpp" and nodes == 1 and per_node >= 1 else (),
    )


def _default_model_path(engine: str, d: Deployment) -> str:
    """llama.cpp loads a GGUF file (on the models volume); vLLM and SGLang a Hugging Face id."""
    if engine == "llama.cpp":
        return f"/models/{d.model.id}.{d.weights.name}.gguf"
    return d.model.hf or d.model.id


def _link_reason(catalogue: Catalogue, d: Deployment, nodes: int) -> str:
    link = link_for(catalogue, d, d.devices)
    if link is None:
        return "one GPU: nothing crosses a link"
    where = "within the node" if nodes == 1 else f"across {nodes} nodes"
    return f"interconnect {where}: {link.name}, {link.bandwidth_gbps:g} GB/s per GPU, {link.latency_s * 1e6:.0f} µs per step"


def _quant_reasons(request: PlanRequest, d: Deployment) -> list[str]:
    name = d.weights.name
    if request.engine == "llama.cpp":
        return [f"weights: a {name} GGUF file ({d.weights.bits:g} bits per weight)"]
    flag = ENGINE_QUANTISATION.get(name.lower())
    if flag == "awq":
        return [f"weights {name}: an AWQ checkpoint (--quantization awq)"]
    if flag:
        return [f"weights {name} (--quantization {flag}: quantised when loaded, or an FP8 checkpoint)"]
    return [f"weights {name} as stored ({d.weights.bits:g} bits per weight)"]
