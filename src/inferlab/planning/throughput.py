"""Speed: decode is bound by memory bandwidth, prefill by compute.

One decode step reads every active weight once plus the KV cache of every sequence in the batch:

    step = max(bytes read / (bandwidth x efficiency), FLOPs / (TFLOPS x MFU))

with ``efficiency`` calibrated per engine family and device class (catalogue ``defaults``), MoE
models reading only the experts the batch touches, tensor parallelism dividing the work over the
devices at a ``tp_overhead_factor`` cost and layer splits (pipeline) adding stage times. Prefill is
2 x active params x prompt tokens (+ attention) over TFLOPS x MFU. A saturated server runs as many
sequences as its KV pool holds for ``isl + osl`` tokens each.

Next to each estimate stands the raw bandwidth bound (the roofline): the same bytes read at 100 %
of the memory bandwidth, with no calibrated efficiency and no TP overhead (layer-split stages still
run in turn) — the speed no engine can beat on that hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.memory import estimate_memory, kv_bytes_per_token, validate_positive, weights_bytes
from inferlab.planning.memory import max_batch as largest_batch

Bound = Literal["memory", "compute"]


@dataclass(frozen=True)
class Efficiency:
    value: float
    key: str
    source: str


@dataclass(frozen=True)
class DecodeStep:
    seconds: float
    bound: Bound
    bytes_read: float  # per device
    bandwidth_bound_seconds: float  # the bytes at 100 % of the bandwidth (the roofline)


@dataclass(frozen=True)
class ThroughputEstimate:
    deployment: str
    batch: int
    prompt_tokens: int
    output_tokens: int
    itl_s: float  # time between two tokens of one stream
    tokens_per_s_per_stream: float
    output_tokens_per_s: float  # all streams together, prefill time included
    prefill_tokens_per_s: float | None
    ttft_s: float | None  # prefill of one prompt plus the first decode step
    request_latency_s: float | None
    bound: Bound
    efficiency: Efficiency
    bandwidth_bound_tokens_per_s_per_stream: float  # roofline: bytes read at 100 % of the bandwidth
    bandwidth_bound_output_tokens_per_s: float  # the same for all streams (decode only)
    notes: tuple[str, ...] = ()


def decode_efficiency(catalogue: Catalogue, d: Deployment) -> Efficiency:
    family = d.engine.family
    cls = d.accelerator.efficiency_class
    if family == "llama_cpp" and cls in ("consumer_nvidia", "datacenter_gddr"):
        cls = "consumer_nvidia_4bit" if d.weights.bits < 8 else "consumer_nvidia_16bit"
    key = f"decode_bandwidth_efficiency.{family}.{cls}"
    if key not in catalogue.defaults:
        key = f"decode_bandwidth_efficiency.{family}.datacenter_hbm"
    sourced = catalogue.defaults[key]
    return Efficiency(sourced.value, key, sourced.ref.source)


def weight_bytes_per_step(d: Deployment, batch: int) -> float:
    """Weight bytes one decode step reads (all devices): MoE batches touch more experts."""
    total = weights_bytes(d)
    m = d.model
    if not m.experts or not m.experts_active or m.active_params_b is None:
        return total * m.active_params / m.params
    share = m.experts_active / m.experts
    expert_params = (m.params - m.active_params) / (1 - share)
    touched = 1 - (1 - share) ** batch
    read_params = m.params - expert_params + expert_params * touched
    return total * read_params / m.params


def _compute_rate(catalogue: Catalogue, d: Deployment) -> float | None:
    """Usable FLOP/s of one device for the format's arithmetic, or None when unknown."""
    tflops = d.accelerator.compute_tflops(d.weights.compute)
    return None if tflops is None else tflops * 1e12 * catalogue.default("prefill_mfu")


def _split_factor(catalogue: Catalogue, d: Deployment) -> float:
    """Time multiplier on one device's share: TP pays for communication; layer-split stages run in
    turn, so a token takes every stage's time (divided by the calibrated split speedup)."""
    factor = catalogue.default("tp_overhead_factor") if d.parallel.tensor > 1 else 1.0
    if d.parallel.pipeline > 1:
        factor *= d.parallel.pipeline / catalogue.default("layer_split_speedup")
    return factor


def decode_step(catalogue: Catalogue, d: Deployment, batch: int, mean_context: float) -> DecodeStep:
    devices = d.devices
    kv_per_token = kv_bytes_per_token(d.model, d.kv_dtype.bytes_per_element, d.parallel.tensor, d.parallel.pipeline)
    bytes_read = weight_bytes_per_step(d, batch) / devices + batch * mean_context * kv_per_token
    efficiency = decode_efficiency(catalogue, d).value
    raw_s = bytes_read / (d.accelerator.bandwidth_gbps * 1e9) * d.parallel.pipeline
    memory_s = bytes_read / (d.accelerator.bandwidth_gbps * 1e9 * efficiency) * _split_factor(catalogue, d)
    rate = _compute_rate(catalogue, d)
    if rate is None:
        return DecodeStep(memory_s, "memory", bytes_read, raw_s)
    flops = batch * (2 * d.model.active_params + _attention_flops(d, mean_context))
    compute_s = flops / devices / rate * _split_factor(catalogue, d)
    if compute_s > memory_s:
        return DecodeStep(compute_s, "compute", bytes_read, raw_s)
    return DecodeStep(memory_s, "memory", bytes_read, raw_s)


def _attention_flops(d: Deployment, context: float) -> float:
    """FLOPs per token for QK^T and AV against ``context`` cached tokens."""
    return 4 * d.model.layers * context * d.model.heads * d.model.head_dim


def prefill_seconds(catalogue: Catalogue, d: Deployment, tokens: int) -> float | None:
    rate = _compute_rate(catalogue, d)
    if rate is None:
        return None
    flops = 2 * d.model.active_params * tokens + _attention_flops(d, tokens / 2) * tokens
    return flops / d.devices / rate * _split_factor(catalogue, d)


def estimate_throughput(
    catalogue: Catalogue, d: Deployment, *, prompt_tokens: int = 512, output_tokens: int = 256, concurrency: int = 1
) -> ThroughputEstimate:
    """Speed with ``concurrency`` streams each sending ``prompt_tokens`` and receiving ``output_tokens``."""
    validate_positive(prompt_tokens, "prompt_tokens")
    validate_positive(output_tokens, "output_tokens")
    validate_positive(concurrency, "concurrency")
    step = decode_step(catalogue, d, concurrency, prompt_tokens + output_tokens / 2)
    prefill = prefill_seconds(catalogue, d, prompt_tokens)
    notes: list[str] = []
    if prefill is None:
        notes.append(f"no compute figure for {d.accelerator.id}: prefill and TTFT not estimated")
        output_rate = concurrency / step.seconds
    else:
        # In steady state each request costs its prefill plus its share of the batched decode steps.
        output_rate = output_tokens / (prefill + output_tokens * step.seconds / concurrency)
    memory = estimate_memory(catalogue, d, prompt_tokens + output_tokens, concurrency)
    if not memory.fits:
        notes.append("this batch and context do not fit in memory (see vram)")
    return ThroughputEstimate(
        deployment=d.label(),
        batch=concurrency,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        itl_s=step.seconds,
        tokens_per_s_per_stream=1 / step.seconds,
        output_tokens_per_s=output_rate,
        prefill_tokens_per_s=None if prefill is None else prompt_tokens / prefill,
        ttft_s=None if prefill is None else prefill + step.seconds,
        request_latency_s=None if prefill is None else prefill + output_tokens * step.seconds,
        bound=step.bound,
        efficiency=decode_efficiency(catalogue, d),
        bandwidth_bound_tokens_per_s_per_stream=1 / step.bandwidth_bound_seconds,
        bandwidth_bound_output_tokens_per_s=concurrency / step.bandwidth_bound_seconds,
        notes=tuple(notes),
    )


def saturated_batch(catalogue: Catalogue, d: Deployment, isl: int, osl: int, max_batch: int | None = None) -> int:
    """Sequences a server keeps in flight: its KV pool over ``isl + osl`` tokens each, capped."""
    memory = estimate_memory(catalogue, d, isl + osl, 1)
    per_sequence = memory.kv_cache
    by_memory = int(memory.kv_pool // per_sequence) if d.engine.pool_mode != "none" else _llama_cpp_batch(catalogue, d, isl + osl)
    return max(0, min(by_memory, max_batch or d.engine.default_max_batch))


def _llama_cpp_batch(catalogue: Catalogue, d: Deployment, context: int) -> int:
    return largest_batch(catalogue, d, context).value


def max_throughput(
    catalogue: Catalogue, d: Deployment, *, isl: int, osl: int, max_batch: int | None = None
) -> ThroughputEstimate:
    """Output tokens/s of a saturated server (every slot busy, prefill included)."""
    batch = saturated_batch(catalogue, d, isl, osl, max_batch)
    if batch == 0:
        estimate = estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=1)
        return _with_note(estimate, "not even one sequence of isl+osl fits in the KV pool")
    return estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=batch)


def _with_note(estimate: ThroughputEstimate, note: str) -> ThroughputEstimate:
    return replace(estimate, notes=(*estimate.notes, note))
