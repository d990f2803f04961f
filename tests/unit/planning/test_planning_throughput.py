"""Decode bound by memory bandwidth, prefill by compute, batching, MoE and parallelism."""

from __future__ import annotations

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import (
    Catalogue,
    estimate_throughput,
    load_catalogue,
    max_throughput,
    resolve_deployment,
)
from inferlab.planning.throughput import decode_efficiency, weight_bytes_per_step


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_single_stream_decode_by_hand(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q4_K_M")
    est = estimate_throughput(catalogue, d, prompt_tokens=1, output_tokens=2)  # mean context 2 tokens
    bytes_per_token = 8.03e9 * 4.90 / 8 + 2 * 128 * 1024
    assert est.efficiency.value == 0.60
    assert est.tokens_per_s_per_stream == pytest.approx(1008e9 * 0.60 / bytes_per_token)
    assert est.bound == "memory"


def test_raw_bandwidth_bound_is_shown_next_to_the_calibrated_speed(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q4_K_M")
    est = estimate_throughput(catalogue, d, prompt_tokens=1, output_tokens=2, concurrency=4)
    bytes_per_step = 8.03e9 * 4.90 / 8 + 4 * 2 * 128 * 1024
    assert est.bandwidth_bound_tokens_per_s_per_stream == pytest.approx(1008e9 / bytes_per_step)
    assert est.bandwidth_bound_output_tokens_per_s == pytest.approx(4 * 1008e9 / bytes_per_step)
    # tensor parallel: each GPU reads half, with no calibrated TP overhead in the bound
    tp = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=2)
    tp_est = estimate_throughput(catalogue, tp, prompt_tokens=1, output_tokens=2)
    per_gpu = 70.55e9 / 2 + 2 * 80 * 2 * 4 * 128 * 2
    assert tp_est.bandwidth_bound_tokens_per_s_per_stream == pytest.approx(3350e9 / per_gpu)
    # calibrated speed: the bytes at 60 % of the bandwidth, plus the step's fixed latency (vLLM: 0.3 ms
    # per step, 5 us per layer, two NVLink all-reduces per layer of one 8 us step each at TP2)
    fixed = 0.0003 + 80 * 5e-6 + 2 * 80 * (8e-6 + 2 * 1 / 2 * 8192 * 2 / 450e9)
    assert tp_est.step_fixed_s == pytest.approx(fixed)
    assert tp_est.itl_s == pytest.approx(per_gpu / (3350e9 * 0.60) + fixed)


def test_efficiency_depends_on_engine_device_and_bits(catalogue: Catalogue) -> None:
    def eff(gpu: str, quant: str, engine: str = "llama.cpp") -> float:
        return decode_efficiency(catalogue, resolve_deployment(catalogue, model="llama-3.1-8b", gpu=gpu, quant=quant,
                                                               engine=engine)).value
    assert eff("rtx-4090", "F16") == 0.80
    assert eff("apple-m1", "Q4_0") == 0.75
    assert eff("apple-m2-ultra", "Q4_0") == 0.55
    assert eff("cpu-ddr5-6400", "Q4_0") == 0.65
    assert eff("h100-sxm", "Q4_0") == 0.30
    assert eff("h100-sxm", "bf16", "vllm") == 0.60


def test_prefill_is_compute_bound_and_ttft_includes_it(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="bf16", engine="vllm")
    est = estimate_throughput(catalogue, d, prompt_tokens=1000, output_tokens=100)
    flops = 2 * 8.03e9 * 1000 + 4 * 32 * 500 * 32 * 128 * 1000
    prefill = flops / (989e12 * 0.40) + 0.0003 + 32 * 5e-6  # arithmetic + one step's fixed latency
    assert est.prefill_tokens_per_s == pytest.approx(1000 / prefill)
    assert est.ttft_s == pytest.approx(prefill)  # the prefill pass yields the first token


def test_no_compute_figure_means_no_ttft(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-7b", gpu="apple-m1", quant="Q4_K_M", memory_gb=16)
    est = estimate_throughput(catalogue, d)
    assert est.ttft_s is None and est.notes


def test_batching_raises_total_and_lowers_per_stream(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="fp8", engine="vllm")
    one = estimate_throughput(catalogue, d, concurrency=1)
    many = estimate_throughput(catalogue, d, concurrency=64)
    assert many.output_tokens_per_s > 10 * one.output_tokens_per_s
    assert many.tokens_per_s_per_stream < one.tokens_per_s_per_stream
    huge = estimate_throughput(catalogue, d, prompt_tokens=128, output_tokens=128, concurrency=4096)
    assert huge.bound == "compute"


def test_moe_reads_active_experts_only(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="mixtral-8x7b", gpu="h100-sxm", quant="bf16", engine="vllm", gpus=2)
    total = 46.7e9 * 2
    assert weight_bytes_per_step(d, 1) == pytest.approx(12.9e9 * 2)
    assert weight_bytes_per_step(d, 1) < weight_bytes_per_step(d, 8) < total
    assert weight_bytes_per_step(d, 10_000) == pytest.approx(total, rel=1e-3)


def test_tensor_parallel_speeds_up_and_layer_split_does_not(catalogue: Catalogue) -> None:
    def speed(gpus: int, engine: str, quant: str) -> float:
        d = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant=quant, engine=engine, gpus=gpus)
        return estimate_throughput(catalogue, d).tokens_per_s_per_stream
    tp2, tp8 = speed(2, "vllm", "fp8") / speed(1, "vllm", "fp8"), speed(8, "vllm", "fp8") / speed(1, "vllm", "fp8")
    assert 1.6 < tp2 < 2  # half the bytes per GPU, plus all-reduces
    assert tp2 < tp8 < 8 * 0.6  # the fixed latency does not shrink with the bytes: far from linear at TP8
    assert speed(2, "llama.cpp", "Q4_K_M") == pytest.approx(speed(1, "llama.cpp", "Q4_K_M"), rel=0.01)


def test_saturated_server_is_limited_by_its_kv_pool(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="h100-sxm", quant="fp8", engine="trt-llm", gpus=2)
    short = max_throughput(catalogue, d, isl=128, osl=128)
    long = max_throughput(catalogue, d, isl=8000, osl=8000)
    assert long.batch < short.batch
    assert long.output_tokens_per_s < short.output_tokens_per_s


def test_bad_token_counts(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090", quant="Q4_K_M")
    with pytest.raises(InvalidRequest) as info:
        estimate_throughput(catalogue, d, prompt_tokens=-5)
    assert info.value.param == "prompt_tokens"
