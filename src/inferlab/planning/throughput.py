"""Speed: decode is bound by memory bandwidth (or compute), plus the fixed latency of every step.

One decode step reads the active weights once plus the KV cache of every sequence in the batch:

    step = max(bytes read / (bandwidth x efficiency), FLOPs / (TFLOPS x MFU)) + fixed latency

with ``efficiency`` calibrated per engine family and device class (catalogue ``defaults``). The
bytes are those of the busiest device: dense weights split over the tensor x pipeline devices, MoE
layers reading only the experts the batch touches, with expert parallelism's load imbalance
(:mod:`experts`); pipeline stages run in turn. The fixed latency (:mod:`overheads`) is what does not
shrink with the bytes: engine work per step, kernel floors per layer, MoE routing, tensor-parallel
all-reduces and expert-parallel all-to-alls over the chosen interconnect, stage hand-offs. Prefill
is 2 x active params x prompt tokens (+ attention) over TFLOPS x MFU, or one read of the touched
weights when that is longer, plus one step's fixed latency (with large messages); on a busy server
a prompt adds only its arithmetic (prefills are batched with the decode steps). Speculative
decoding (:mod:`speculative`) verifies ``k + 1`` tokens per stream in one step after ``k`` draft
passes and emits the acceptance length per step. A saturated server runs as many sequences as its
KV pool holds for ``isl + osl`` tokens each.

Next to each estimate stands the raw bandwidth bound (the roofline): the same bytes read at 100 %
of the memory bandwidth, with no calibrated efficiency and no fixed latency (layer-split stages
still run in turn) — the speed no engine can beat on that hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.experts import expert_params, touched_fraction, weight_reads
from inferlab.planning.memory import estimate_memory, kv_bytes_per_token, validate_positive, weights_bytes
from inferlab.planning.memory import max_batch as largest_batch
from inferlab.planning.overheads import step_overhead
from inferlab.planning.speculative import Speculation

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
    bytes_read: float  # per device (the busiest one)
    bandwidth_bound_seconds: float  # the bytes at 100 % of the bandwidth (the roofline)
    fixed_seconds: float = 0.0  # the step's fixed latency (included in ``seconds``)


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
    ttft_s: float | None  # the prefill pass of one prompt on an idle server (it yields the first token)
    request_latency_s: float | None
    bound: Bound
    efficiency: Efficiency
    bandwidth_bound_tokens_per_s_per_stream: float  # roofline: bytes read at 100 % of the bandwidth
    bandwidth_bound_output_tokens_per_s: float  # the same for all streams (decode only)
    step_fixed_s: float = 0.0  # fixed latency of one decode step (engine, layers, collectives)
    tokens_per_step: float = 1.0  # per stream: 1, or the acceptance length with speculative decoding
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
    """Weight bytes one decode step reads (all devices together): MoE batches touch more experts."""
    total = weights_bytes(d)
    m = d.model
    if not m.is_moe:
        return total * m.active_params / m.params
    experts = expert_params(m)
    return total * (m.params - experts + experts * touched_fraction(m, batch)) / m.params


def _compute_rate(catalogue: Catalogue, d: Deployment) -> float | None:
    """Usable FLOP/s of one device for the format's arithmetic, or None when unknown."""
    tflops = d.accelerator.compute_tflops(d.weights.compute)
    return None if tflops is None else tflops * 1e12 * catalogue.default("prefill_mfu")


def _expert_efficiency(catalogue: Catalogue, d: Deployment) -> float:
    """Share of the dense kernels' bandwidth the MoE expert kernels reach for this weight format."""
    key = f"moe_expert_efficiency.{d.weights.name.lower()}"
    return catalogue.default(key) if key in catalogue.defaults and d.engine.family == "batched_server" else 1.0


def _stage_factor(catalogue: Catalogue, d: Deployment) -> float:
    """Layer-split stages run in turn: a token takes every stage's time (over the calibrated speedup)."""
    if d.parallel.pipeline > 1:
        return d.parallel.pipeline / catalogue.default("layer_split_speedup")
    return 1.0


def decode_step(catalogue: Catalogue, d: Deployment, batch: int, mean_context: float,
                tokens_per_sequence: int = 1) -> DecodeStep:
    """One forward step of ``batch`` sequences, each adding ``tokens_per_sequence`` tokens (verify
    passes of speculative decoding add more than one)."""
    tokens = batch * tokens_per_sequence
    kv_per_token = kv_bytes_per_token(d.model, d.kv_dtype.bytes_per_element, d.parallel.tensor, d.parallel.pipeline)
    reads = weight_reads(d, tokens)
    kv = batch * mean_context * kv_per_token
    bytes_read = reads.total + kv
    efficiency = decode_efficiency(catalogue, d).value
    effective = reads.shared + kv + reads.experts / _expert_efficiency(catalogue, d)
    raw_s = bytes_read / (d.accelerator.bandwidth_gbps * 1e9) * d.parallel.pipeline
    memory_s = effective / (d.accelerator.bandwidth_gbps * 1e9 * efficiency) * _stage_factor(catalogue, d)
    fixed_s = step_overhead(catalogue, d, tokens).total
    rate = _compute_rate(catalogue, d)
    if rate is None:
        return DecodeStep(memory_s + fixed_s, "memory", bytes_read, raw_s, fixed_s)
    flops = tokens * (2 * d.model.active_params + _attention_flops(d, mean_context))
    compute_s = flops / d.devices / rate * _stage_factor(catalogue, d)
    if compute_s > memory_s:
        return DecodeStep(compute_s + fixed_s, "compute", bytes_read, raw_s, fixed_s)
    return DecodeStep(memory_s + fixed_s, "memory", bytes_read, raw_s, fixed_s)


def speculative_step(catalogue: Catalogue, d: Deployment, batch: int, mean_context: float,
                     spec: Speculation) -> DecodeStep:
    """One speculative step: ``draft_tokens`` draft passes, then one verify pass of ``k + 1`` tokens."""
    verify = decode_step(catalogue, d, batch, mean_context, spec.draft_tokens + 1)
    draft_bytes = spec.draft_params_b * 1e9 * spec.draft_bytes_per_param / d.parallel.tensor
    efficiency = decode_efficiency(catalogue, d).value
    draft_fixed = step_overhead(catalogue, d, batch, layers=spec.draft_layers, engine_step=False).total
    draft_s = draft_bytes / (d.accelerator.bandwidth_gbps * 1e9 * efficiency) + draft_fixed
    raw_s = verify.bandwidth_bound_seconds + spec.draft_tokens * draft_bytes / (d.accelerator.bandwidth_gbps * 1e9)
    return DecodeStep(verify.seconds + spec.draft_tokens * draft_s, verify.bound,
                      verify.bytes_read + spec.draft_tokens * draft_bytes, raw_s,
                      verify.fixed_seconds + spec.draft_tokens * draft_fixed)


def _attention_flops(d: Deployment, context: float) -> float:
    """FLOPs per token for QK^T and AV against ``context`` cached tokens."""
    return 4 * d.model.layers * context * d.model.heads * d.model.head_dim


def prefill_compute_seconds(catalogue: Catalogue, d: Deployment, tokens: int) -> float | None:
    """The prefill's arithmetic alone: what one prompt adds to a busy server, whose batched steps
    share the weight reads and the fixed latency."""
    rate = _compute_rate(catalogue, d)
    if rate is None:
        return None
    flops = 2 * d.model.active_params * tokens + _attention_flops(d, tokens / 2) * tokens
    return flops / d.devices / rate * _stage_factor(catalogue, d)


def prefill_seconds(catalogue: Catalogue, d: Deployment, tokens: int) -> float | None:
    """One prompt's prefill pass on an idle server: its arithmetic, or one read of the weights it
    touches when that takes longer (short prompts; MoE experts that each see only a few of the
    prompt's tokens), plus one step's fixed latency. The pass yields the first token: this is the
    time to first token."""
    compute = prefill_compute_seconds(catalogue, d, tokens)
    if compute is None:
        return None
    reads = weight_reads(d, tokens)
    memory_s = (reads.shared + reads.experts / _expert_efficiency(catalogue, d)) / (
        d.accelerator.bandwidth_gbps * 1e9 * decode_efficiency(catalogue, d).value) * _stage_factor(catalogue, d)
    return max(compute, memory_s) + step_overhead(catalogue, d, tokens).total


def estimate_throughput(
    catalogue: Catalogue,
    d: Deployment,
    *,
    prompt_tokens: int = 512,
    output_tokens: int = 256,
    concurrency: int = 1,
    speculation: Speculation | None = None,
) -> ThroughputEstimate:
    """Speed with ``concurrency`` streams each sending ``prompt_tokens`` and receiving ``output_tokens``."""
    validate_positive(prompt_tokens, "prompt_tokens")
    validate_positive(output_tokens, "output_tokens")
    validate_positive(concurrency, "concurrency")
    context = prompt_tokens + output_tokens / 2
    if speculation is None:
        step, per_step = decode_step(catalogue, d, concurrency, context), 1.0
    else:
        step, per_step = speculative_step(catalogue, d, concurrency, context, speculation), speculation.acceptance_length
    itl = step.seconds / per_step
    prefill = prefill_seconds(catalogue, d, prompt_tokens)
    prefill_work = prefill_compute_seconds(catalogue, d, prompt_tokens)
    notes: list[str] = []
    if speculation is not None:
        notes.append(f"speculative decoding ({speculation.method}): {speculation.draft_tokens} draft tokens,"
                     f" {speculation.acceptance_length:g} tokens accepted per step (an input)")
    if prefill is None or prefill_work is None:
        notes.append(f"no compute figure for {d.accelerator.id}: prefill and TTFT not estimated")
        output_rate = concurrency / itl
    else:
        # In steady state each request costs its prefill arithmetic plus its share of the batched
        # decode steps (whose fixed latency the prefills ride along with).
        output_rate = output_tokens / (prefill_work + output_tokens * itl / concurrency)
    memory = estimate_memory(catalogue, d, prompt_tokens + output_tokens, concurrency)
    if not memory.fits:
        notes.append("this batch and context do not fit in memory (see vram)")
    return ThroughputEstimate(
        deployment=d.label(),
        batch=concurrency,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        itl_s=itl,
        tokens_per_s_per_stream=1 / itl,
        output_tokens_per_s=output_rate,
        prefill_tokens_per_s=None if prefill is None else prompt_tokens / prefill,
        ttft_s=prefill,
        request_latency_s=None if prefill is None else prefill + (output_tokens - 1) * itl,
        bound=step.bound,
        efficiency=decode_efficiency(catalogue, d),
        bandwidth_bound_tokens_per_s_per_stream=per_step / step.bandwidth_bound_seconds,
        bandwidth_bound_output_tokens_per_s=concurrency * per_step / step.bandwidth_bound_seconds,
        step_fixed_s=step.fixed_seconds,
        tokens_per_step=per_step,
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
    catalogue: Catalogue, d: Deployment, *, isl: int, osl: int, max_batch: int | None = None,
    speculation: Speculation | None = None,
) -> ThroughputEstimate:
    """Output tokens/s of a saturated server (every slot busy, prefill included)."""
    batch = saturated_batch(catalogue, d, isl, osl, max_batch)
    if batch == 0:
        estimate = estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=1,
                                       speculation=speculation)
        return _with_note(estimate, "not even one sequence of isl+osl fits in the KV pool")
    return estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=batch,
                               speculation=speculation)


def _with_note(estimate: ThroughputEstimate, note: str) -> ThroughputEstimate:
    return replace(estimate, notes=(*estimate.notes, note))
