"""The parts of the multi-GPU speed model, by hand: expert reads, collectives, fixed step latency,
speculative decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import Catalogue, Deployment, estimate_throughput, load_catalogue, resolve_deployment
from inferlab.planning.collectives import all_reduce_s, all_to_all_s, link_for, send_s
from inferlab.planning.experts import (
    expected_busiest,
    expert_params,
    touched_fraction,
    weight_bytes_per_device,
)
from inferlab.planning.overheads import step_overhead
from inferlab.planning.speculative import Speculation
from inferlab.planning.throughput import decode_step, speculative_step


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_expected_busiest_rank_by_hand() -> None:
    assert expected_busiest(1, 0.5, 2) == pytest.approx(0.75)  # max of two fair coins
    assert expected_busiest(2, 0.5, 1) == pytest.approx(1.0)  # one rank: the mean
    # two ranks of two experts, q = 1/2: P(max >= 1) = 1 - (1/4)^2, P(max >= 2) = 1 - (3/4)^2
    assert expected_busiest(2, 0.5, 2) == pytest.approx((1 - 1 / 16) + (1 - 9 / 16))
    assert expected_busiest(16, 0.4, 8) > 16 * 0.4  # the busiest of 8 is above the mean


def test_moe_bytes_per_device_tensor_vs_expert_parallel(catalogue: Catalogue) -> None:
    def dep(ep: bool) -> Deployment:
        return resolve_deployment(catalogue, model="qwen3-coder-480b-a35b", gpu="h100-sxm", quant="fp8", engine="vllm",
                                  gpus=8, expert_parallel=ep)
    tp, ep = dep(False), dep(True)
    m = catalogue.model("qwen3-coder-480b-a35b")
    experts = expert_params(m)
    assert experts == pytest.approx((480e9 - 35e9) / (1 - 8 / 160))
    per_expert = experts / 62 / 160  # one expert of one layer, 1 byte per parameter in FP8
    shared = (480e9 - experts) / 8
    q = touched_fraction(m, 8)
    assert q == pytest.approx(1 - (1 - 8 / 160) ** 8)
    assert weight_bytes_per_device(tp, 8) == pytest.approx(shared + 160 * q * per_expert * 62 / 8)
    busiest = expected_busiest(20, q, 8)
    assert weight_bytes_per_device(ep, 8) == pytest.approx(shared + busiest * per_expert * 62)
    assert weight_bytes_per_device(ep, 8) > weight_bytes_per_device(tp, 8)


def test_collectives_over_nvlink_and_beyond_a_node(catalogue: Catalogue) -> None:
    d8 = resolve_deployment(catalogue, model="llama-3.1-405b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8)
    link = link_for(catalogue, d8, 8)
    assert link is not None and link.id == "nvlink4"
    message = 8 * 16384 * 2
    assert all_reduce_s(link, 8, message) == pytest.approx(3 * 8e-6 + 2 * 7 / 8 * message / 450e9)
    assert all_to_all_s(link, 8, message) == pytest.approx(3 * 8e-6 + 7 / 8 * message / 450e9)
    assert send_s(link, message) == pytest.approx(8e-6 + message / 450e9)
    assert link_for(catalogue, d8, 16) == catalogue.interconnect("network-ib-400g")  # two nodes
    assert link_for(catalogue, d8, 1) is None
    rtx = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="rtx-4090", quant="Q4_K_M", gpus=2)
    assert link_for(catalogue, rtx, 2) == catalogue.interconnect("pcie4")


def test_fixed_step_latency_by_hand(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-405b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8)
    o = step_overhead(catalogue, d, tokens=8)
    assert o.engine_s == pytest.approx(0.0003)
    assert o.layers_s == pytest.approx(126 * 5e-6)
    assert o.tensor_parallel_s == pytest.approx(2 * 126 * (3 * 8e-6 + 2 * 7 / 8 * 8 * 16384 * 2 / 450e9))
    assert o.expert_parallel_s == 0 and o.pipeline_s == 0
    moe = resolve_deployment(catalogue, model="llama-4-maverick", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8,
                             expert_parallel=True)
    e = step_overhead(catalogue, moe, tokens=8)
    assert e.layers_s == pytest.approx(48 * 5e-6 + 24 * 10e-6)  # 24 of 48 layers are MoE
    assert e.expert_parallel_s == pytest.approx(2 * 24 * (3 * 8e-6 + 7 / 8 * 8 * 1 * 5120 * 2 / 450e9))
    llama = resolve_deployment(catalogue, model="llama-3.1-70b", gpu="rtx-4090", quant="Q4_K_M", gpus=2)
    hand_off = step_overhead(catalogue, llama, tokens=1)
    assert hand_off.engine_s == hand_off.layers_s == 0  # llama.cpp's efficiency carries its fixed costs
    assert hand_off.pipeline_s == pytest.approx(20e-6 + 8192 * 2 / 32e9)  # one PCIe hand-off between two stages


def test_the_moe_speed_on_eight_gpus_is_an_estimate_not_a_bound(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-4-maverick", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8)
    est = estimate_throughput(catalogue, d, prompt_tokens=512, output_tokens=256)
    assert est.step_fixed_s > 0.5 * est.itl_s  # few bytes per GPU: the fixed latency dominates
    assert est.tokens_per_s_per_stream < est.bandwidth_bound_tokens_per_s_per_stream / 4
    step = decode_step(catalogue, d, 1, 640)
    assert step.seconds == pytest.approx(est.itl_s) and step.fixed_seconds == pytest.approx(est.step_fixed_s)


def test_speculative_decoding(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="deepseek-v3", gpu="b200", quant="fp4", engine="trt-llm", gpus=8)
    spec = Speculation(draft_tokens=3, acceptance_length=2.82, draft_params_b=1.5)
    verify = decode_step(catalogue, d, 1, 2000, tokens_per_sequence=4)
    step = speculative_step(catalogue, d, 1, 2000, spec)
    draft_bytes = 1.5e9 * 2 / 8
    draft_fixed = step_overhead(catalogue, d, 1, layers=1, engine_step=False).total
    assert step.seconds == pytest.approx(verify.seconds + 3 * (draft_bytes / (8000e9 * 0.60) + draft_fixed))
    plain = estimate_throughput(catalogue, d, prompt_tokens=2000, output_tokens=1)
    fast = estimate_throughput(catalogue, d, prompt_tokens=2000, output_tokens=1, speculation=spec)
    assert fast.itl_s == pytest.approx(step.seconds / 2.82)
    assert 1.5 < plain.itl_s / fast.itl_s < 2.82 and fast.tokens_per_step == 2.82
    none_accepted = estimate_throughput(catalogue, d, prompt_tokens=2000, output_tokens=1,
                                        speculation=Speculation(3, 1.0, 1.5))
    assert none_accepted.itl_s > plain.itl_s  # drafting that never lands only costs


@pytest.mark.parametrize(("k", "accepted"), [(0, 1.0), (3, 0.5), (3, 4.5)])
def test_bad_speculation_is_refused(k: int, accepted: float) -> None:
    with pytest.raises(InvalidRequest):
        Speculation(draft_tokens=k, acceptance_length=accepted, draft_params_b=1.0)


def test_unknown_interconnect_is_a_clear_error(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("accelerators:\n  - {id: h100-sxm, interconnect: carrier-pigeon}\n", encoding="utf-8")
    with pytest.raises(InvalidRequest) as info:
        load_catalogue([mine])
    assert "carrier-pigeon" in info.value.message and "nvlink4" in info.value.message
