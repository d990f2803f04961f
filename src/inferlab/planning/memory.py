"""Device memory: weights, KV cache, activations/compute buffers and runtime overhead.

All sizes are bytes *per device*. The model:

* weights = parameters x bits per weight / 8 (or the real tensor bytes of a GGUF file), split over
  tensor x pipeline parallel devices;
* KV cache = per layer 2 x KV heads x head_dim x bytes per element (GQA/MHA), or
  (kv_lora_rank + rope dim) x bytes (MLA, one latent replicated on every TP rank); KV heads are
  split over TP ranks but never below one head per rank (replicated once TP exceeds them);
  sliding-window layers hold at most ``window`` tokens;
* llama.cpp compute buffer = n_ubatch x (n_ctx x 2 B [f16 KQ mask] + 4 B x (3 n_ff + 4 n_embd))
  + logits, plus the n_ctx x n_ubatch x n_head x 4 B score matrix without flash attention;
  batched servers: the activation peak of vLLM's profiling batch (``max_num_batched_tokens`` x
  hidden/intermediate sizes per TP rank, plus the sampler's logits; see :mod:`activations`);
* runtime overhead: the measured llama.cpp CPU constant, or the per-GPU CUDA/NCCL figure;
* vLLM-style engines reserve ``gpu_memory_utilization x memory`` and give the KV cache what is
  left after weights, activations and overhead (TensorRT-LLM: a fraction of the free memory).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from inferlab.errors import InvalidRequest
from inferlab.planning.activations import batched_server_activation_bytes
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.engines import LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES, LLAMA_CPP_DEFAULT_UBATCH
from inferlab.planning.specs import GIB, ModelSpec

_SEARCH_LIMIT = 1 << 26


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-device memory for one deployment at ``context`` tokens x ``batch`` sequences."""

    deployment: str
    context: int
    batch: int
    devices: int
    weights: float
    kv_cache: float
    compute: float
    overhead: float
    required: float
    capacity: float  # usable memory of one device
    budget: float  # what the engine allows itself (capacity, or the vLLM utilisation share)
    kv_pool: float  # memory the engine reserves for KV (pool engines), else the KV cache itself
    kv_bytes_per_token: float  # per device, all layers, at full attention
    fits: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def misfit_reason(est: MemoryEstimate) -> str | None:
    """Why a deployment does not fit, in words a user can act on (None when it fits)."""
    if est.fits:
        return None
    fixed = est.weights + est.compute + est.overhead
    limit = f"the {est.budget / GIB:.1f} GiB the engine may use of each device ({est.capacity / GIB:.1f} GiB usable)"
    if fixed > est.budget:
        return (f"{est.deployment} does not fit: weights {est.weights / GIB:.1f} GiB + activations"
                f" {est.compute / GIB:.1f} GiB + runtime {est.overhead / GIB:.1f} GiB = {fixed / GIB:.1f} GiB per device,"
                f" more than {limit}; use more devices, a smaller weight format or a larger device")
    room = min(est.kv_pool, est.budget - fixed)
    return (f"{est.deployment} does not fit: {est.batch} x {est.context:,} tokens of KV cache need"
            f" {est.kv_cache / GIB:.2f} GiB per device but only {max(0.0, room) / GIB:.2f} GiB are left after the weights,"
            f" activations and runtime within {limit}; shorten the context or add devices")


def validate_positive(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise InvalidRequest(f"{name} must be a positive number, got {value!r}", param=name)


def kv_bytes_per_token(model: ModelSpec, bytes_per_element: float, tensor_parallel: int = 1, pipeline_parallel: int = 1) -> float:
    """KV cache bytes for one token across the layers one device holds (full attention)."""
    layers = math.ceil(model.layers / pipeline_parallel)
    return layers * _kv_bytes_per_layer_token(model, bytes_per_element, tensor_parallel)


def _kv_bytes_per_layer_token(model: ModelSpec, bytes_per_element: float, tensor_parallel: int) -> float:
    if model.attention == "mla":
        return (model.kv_lora_rank + model.qk_rope_head_dim) * bytes_per_element
    heads = max(1, math.ceil(model.kv_heads / tensor_parallel))
    return 2 * heads * model.head_dim * bytes_per_element


def kv_cache_bytes(
    model: ModelSpec, context: int, bytes_per_element: float, *, tensor_parallel: int = 1, pipeline_parallel: int = 1
) -> float:
    """KV cache of one sequence of ``context`` tokens on one device, sliding windows applied."""
    validate_positive(context, "context")
    layers = math.ceil(model.layers / pipeline_parallel)
    sliding = min(layers, math.ceil(model.sliding_window_layers / pipeline_parallel)) if model.sliding_window else 0
    window_tokens = min(context, model.sliding_window or context)
    layer_tokens = (layers - sliding) * context + sliding * window_tokens
    return layer_tokens * _kv_bytes_per_layer_token(model, bytes_per_element, tensor_parallel)


def weights_bytes(d: Deployment) -> float:
    """All weights of the model in the deployment's format (not split)."""
    if d.model.weights_bytes is not None and (d.model.weights_format or "").lower() == d.weights.name.lower():
        return d.model.weights_bytes
    return d.model.params * d.weights.bits / 8


def llama_cpp_compute_bytes(
    model: ModelSpec, context: int, *, flash_attention: bool = True, n_ubatch: int = LLAMA_CPP_DEFAULT_UBATCH
) -> float:
    """llama.cpp's reserved compute buffer (worst-case graph) plus its logits buffer."""
    per_token = context * 2 + 4 * (3 * max(model.intermediate, model.hidden) + 4 * model.hidden)
    if not flash_attention:
        per_token += context * model.heads * 4
    return n_ubatch * per_token + model.vocab * 4


def estimate_memory(catalogue: Catalogue, d: Deployment, context: int, batch: int = 1) -> MemoryEstimate:
    """Memory per device for ``batch`` sequences of ``context`` tokens each."""
    validate_positive(context, "context")
    validate_positive(batch, "batch")
    tp, pp = d.parallel.tensor, d.parallel.pipeline
    weights = weights_bytes(d) / (tp * pp)
    kv = batch * kv_cache_bytes(d.model, context, d.kv_dtype.bytes_per_element, tensor_parallel=tp, pipeline_parallel=pp)
    capacity = d.accelerator.memory_bytes()
    notes = _notes(d, context)
    if d.engine.pool_mode == "none":
        compute, overhead = _llama_cpp_extras(catalogue, d, context, batch)
        required = weights + kv + compute + overhead
        budget, kv_pool = capacity, kv
    else:
        compute = batched_server_activation_bytes(catalogue, d)
        overhead = catalogue.default("runtime_overhead_gib_per_gpu") * GIB
        fraction = catalogue.default(d.engine.pool_fraction_key or "gpu_memory_utilization_vllm")
        fixed = weights + compute + overhead
        if d.engine.pool_mode == "of_total":
            budget = fraction * capacity
            kv_pool = max(0.0, budget - fixed)
        else:
            kv_pool = max(0.0, fraction * (capacity - fixed))
            budget = fixed + kv_pool
        required = fixed + kv
    return MemoryEstimate(
        deployment=d.label(),
        context=context,
        batch=batch,
        devices=d.devices,
        weights=weights,
        kv_cache=kv,
        compute=compute,
        overhead=overhead,
        required=required,
        capacity=capacity,
        budget=budget,
        kv_pool=kv_pool,
        kv_bytes_per_token=kv_bytes_per_token(d.model, d.kv_dtype.bytes_per_element, tp, pp),
        fits=required <= budget and (d.engine.pool_mode == "none" or kv <= kv_pool),
        notes=notes,
    )


def _llama_cpp_extras(catalogue: Catalogue, d: Deployment, context: int, batch: int) -> tuple[float, float]:
    compute = llama_cpp_compute_bytes(d.model, context * batch, flash_attention=d.flash_attention)
    if d.accelerator.kind in ("cpu", "apple_soc"):
        return compute, LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES
    return compute, catalogue.default("runtime_overhead_gib_per_gpu") * GIB


def _notes(d: Deployment, context: int) -> tuple[str, ...]:
    notes = []
    if d.model.max_context and context > d.model.max_context:
        notes.append(f"context {context} exceeds the model's trained context {d.model.max_context}")
    if d.model.attention != "mla" and d.parallel.tensor > d.model.kv_heads:
        notes.append(f"TP {d.parallel.tensor} > {d.model.kv_heads} KV heads: each rank keeps one replicated head")
    if d.model.attention == "mla" and d.parallel.tensor > 1:
        notes.append("MLA latent cache is replicated on every tensor-parallel rank")
    if d.accelerator.kind == "apple_soc":
        notes.append(f"unified memory: GPU may use {d.accelerator.usable_fraction:.0%} by default")
    return tuple(notes)


@dataclass(frozen=True)
class MaxFit:
    value: int
    limited_by: str  # "memory" | "model" | "none fits"


def max_context(catalogue: Catalogue, d: Deployment, batch: int = 1) -> MaxFit:
    """The longest context (per sequence) that fits with ``batch`` sequences."""
    best = largest_int(lambda n: estimate_memory(catalogue, d, n, batch).fits)
    if best == 0:
        return MaxFit(0, "none fits")
    if d.model.max_context and best >= d.model.max_context:
        return MaxFit(d.model.max_context, "model")
    return MaxFit(best, "memory")


def max_batch(catalogue: Catalogue, d: Deployment, context: int) -> MaxFit:
    """The most sequences of ``context`` tokens that fit at once."""
    best = largest_int(lambda n: estimate_memory(catalogue, d, context, n).fits)
    return MaxFit(best, "memory" if best else "none fits")


def largest_int(fits: Callable[[int], bool]) -> int:
    """Largest n >= 1 with fits(n) for a monotone predicate (0 when even 1 does not fit)."""
    if not fits(1):
        return 0
    low, high = 1, 2
    while high < _SEARCH_LIMIT and fits(high):
        low, high = high, high * 2
    if high >= _SEARCH_LIMIT:
        return _SEARCH_LIMIT
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low

