"""Weights, overheads, engine pools, parallel splits and the largest context/batch that fit."""

from __future__ import annotations

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import (
    Catalogue,
    estimate_memory,
    kv_cache_bytes,
    load_catalogue,
    max_batch,
    max_context,
    resolve_deployment,
    weights_bytes,
)
from inferlab.planning.engines import LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES
from inferlab.planning.memory import llama_cpp_compute_bytes
from inferlab.planning.specs import GIB, MIB


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.mark.parametrize(
    ("quant", "bits"),
    [("fp32", 32), ("bf16", 16), ("fp16", 16), ("fp8", 8), ("int8", 8), ("int4", 4.25), ("Q4_K_M", 4.90), ("Q8_0", 8.51)],
)
def test_weights_by_format(catalogue: Catalogue, quant: str, bits: float) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant=quant)
    assert weights_bytes(d) == pytest.approx(8.03e9 * bits / 8)


def test_llama_cpp_gpu_breakdown_by_hand(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q4_K_M")
    est = estimate_memory(catalogue, d, 8192)
    assert est.weights == pytest.approx(8.03e9 * 4.90 / 8)
    assert est.kv_cache == 8192 * 128 * 1024
    assert est.overhead == 1.0 * GIB  # CUDA context + graphs (catalogue default)
    assert est.compute == llama_cpp_compute_bytes(d.model, 8192)
    assert est.capacity == 24564 * MIB  # what nvidia-smi shows for a 4090
    assert est.required == pytest.approx(est.weights + est.kv_cache + est.compute + est.overhead)
    assert est.fits


def test_llama_cpp_cpu_uses_the_measured_overhead(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="smollm2-135m", gpu="cpu-ddr4-3200", quant="Q4_1")
    assert estimate_memory(catalogue, d, 2048).overhead == LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES


def test_compute_buffer_grows_with_context_and_without_flash_attention(catalogue: Catalogue) -> None:
    model = catalogue.model("smollm2-135m")
    assert llama_cpp_compute_bytes(model, 32768) - llama_cpp_compute_bytes(model, 2048) == 512 * 30720 * 2
    assert llama_cpp_compute_bytes(model, 4096, flash_attention=False) > llama_cpp_compute_bytes(model, 4096)


def test_vllm_pool_takes_what_is_left_of_gpu_memory_utilization(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="bf16", engine="vllm")
    est = estimate_memory(catalogue, d, 4096)
    capacity = 81559 * MIB
    assert est.budget == pytest.approx(0.90 * capacity)
    assert est.kv_pool == pytest.approx(0.90 * capacity - est.weights - est.compute - GIB)
    assert max_batch(catalogue, d, 4096).value == int(est.kv_pool // (4096 * 128 * 1024))


def test_vllm_activations_are_the_profiled_batch_not_a_share_of_the_weights(catalogue: Catalogue) -> None:
    """vLLM profiles one step of max_num_batched_tokens (8192 on an H100) and a sampler pass over
    max_num_seqs (1024) sequences: per token 2 B x (2 hidden + 3 intermediate / TP)."""
    bf16 = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="bf16", engine="vllm")
    fp8 = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="fp8", engine="vllm")
    sampler = 1024 * 128256 * 4 * 2
    assert estimate_memory(catalogue, bf16, 4096).compute == 8192 * 2 * (2 * 4096 + 3 * 14336) + sampler
    assert estimate_memory(catalogue, fp8, 4096).compute == estimate_memory(catalogue, bf16, 4096).compute
    tp2 = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp16", engine="vllm", gpus=2)
    assert estimate_memory(catalogue, tp2, 4096).compute == 8192 * 2 * (2 * 8192 + 3 * 28672 / 2) + sampler
    a100 = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="a100-80gb-sxm", quant="bf16", engine="vllm")
    assert estimate_memory(catalogue, a100, 4096).compute == 2048 * 2 * (2 * 4096 + 3 * 14336) + 256 * 128256 * 8


def test_70b_fp16_needs_two_80gb_gpus_with_vllm(catalogue: Catalogue) -> None:
    one = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp16", engine="vllm")
    two = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp16", engine="vllm", gpus=2)
    assert not estimate_memory(catalogue, one, 4096).fits
    est = estimate_memory(catalogue, two, 4096)
    assert est.weights == pytest.approx(70.55e9)  # 141 GB of weights, half on each GPU
    assert est.fits and est.kv_pool > 2 * GIB
    assert max_context(catalogue, two).value > 16384


def test_vllm_kv_pool_matches_a_published_startup_log(catalogue: Catalogue) -> None:
    """vLLM's memory profile of Llama-3.1-8B BF16 on an 80 GB H100 at gpu_memory_utilization 0.9:
    "model weights take 14.99GiB; non_torch_memory takes 0.12GiB; PyTorch activation peak memory takes
    1.19GiB; the rest of the memory reserved for KV Cache is 54.93GiB" (vLLM worker.py log line)."""
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="bf16", engine="vllm")
    assert estimate_memory(catalogue, d, 4096).kv_pool / GIB == pytest.approx(54.93, rel=0.05)


def test_trtllm_pool_is_a_fraction_of_free_memory(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="fp8", engine="trt-llm")
    est = estimate_memory(catalogue, d, 4096)
    assert est.kv_pool == pytest.approx(0.90 * (est.capacity - est.weights - est.compute - est.overhead))


def test_tensor_parallel_splits_weights_and_kv(catalogue: Catalogue) -> None:
    one = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp8", engine="vllm")
    two = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=2)
    assert two.parallel.tensor == 2
    a, b = estimate_memory(catalogue, one, 8192), estimate_memory(catalogue, two, 8192)
    assert b.weights == pytest.approx(a.weights / 2)
    assert b.kv_cache == pytest.approx(a.kv_cache / 2)


def test_kv_heads_replicated_beyond_tp(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-405b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=16)
    est = estimate_memory(catalogue, d, 1024)
    assert est.kv_cache == kv_cache_bytes(d.model, 1024, 2, tensor_parallel=16)
    assert est.kv_cache == kv_cache_bytes(d.model, 1024, 2, tensor_parallel=8)
    assert any("replicated" in note for note in est.notes)


def test_llama_cpp_several_gpus_split_layers(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="rtx-4090", quant="Q4_K_M", gpus=2)
    assert (d.parallel.tensor, d.parallel.pipeline) == (1, 2)
    single = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="rtx-4090", quant="Q4_K_M")
    assert not estimate_memory(catalogue, single, 4096).fits
    assert estimate_memory(catalogue, d, 4096).fits


def test_apple_unified_memory_counts_the_gpu_share(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-7b", gpu="apple-m1", quant="Q4_K_M", memory_gb=16)
    assert estimate_memory(catalogue, d, 4096).capacity == pytest.approx(16 * GIB * 0.70)


def test_max_context_is_the_boundary(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-coder-32b", gpu="rtx-4090", quant="Q4_K_M")
    fit = max_context(catalogue, d)
    assert fit.limited_by == "memory"
    assert estimate_memory(catalogue, d, fit.value).fits
    assert not estimate_memory(catalogue, d, fit.value + 1).fits


def test_max_context_capped_by_model_and_zero_when_nothing_fits(catalogue: Catalogue) -> None:
    small = resolve_deployment(catalogue, model="smollm2-135m", gpu="h100-sxm", quant="bf16")
    assert max_context(catalogue, small).value == 8192
    assert max_context(catalogue, small).limited_by == "model"
    huge = resolve_deployment(catalogue, model="llama-3.1-405b", gpu="rtx-3060-12gb", quant="fp16")
    assert max_context(catalogue, huge).value == 0
    assert max_batch(catalogue, huge, 1024).limited_by == "none fits"


@pytest.mark.parametrize(("context", "batch"), [(-1, 1), (0, 1), (1024, -3)])
def test_bad_context_or_batch_is_rejected(catalogue: Catalogue, context: int, batch: int) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q4_K_M")
    with pytest.raises(InvalidRequest) as info:
        estimate_memory(catalogue, d, context, batch)
    assert info.value.param in ("context", "batch")


def test_bad_parallel_split_is_rejected(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidRequest, match="must equal gpus"):
        resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", engine="vllm", gpus=4, tensor_parallel=3)
    with pytest.raises(InvalidRequest, match="at least 1"):
        resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", gpus=0)
