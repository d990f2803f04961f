"""Replicas and GPUs for a load under an SLO."""

from __future__ import annotations

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import (
    Catalogue,
    Demand,
    Slo,
    demand_from_users,
    load_catalogue,
    plan_capacity,
    resolve_deployment,
)
from inferlab.planning.throughput import estimate_throughput


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_demand_from_users() -> None:
    demand = demand_from_users(1000, active_fraction=0.3, requests_per_active_user_per_minute=10,
                               prompt_tokens=2000, output_tokens=64)
    assert demand.requests_per_second == pytest.approx(50)
    with pytest.raises(InvalidRequest):
        demand_from_users(0, active_fraction=0.3, requests_per_active_user_per_minute=1, prompt_tokens=1, output_tokens=1)


def test_plan_meets_slo_and_scales_with_demand(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-coder-32b", gpu="h100-sxm", quant="fp8", engine="vllm")
    slo = Slo(ttft_s=1.5, min_tokens_per_s=20)
    small = plan_capacity(catalogue, d, Demand(5, 1500, 150, users=1000), slo)
    large = plan_capacity(catalogue, d, Demand(50, 1500, 150, users=10_000), slo)
    assert small.feasible and large.feasible
    assert large.gpus > small.gpus
    assert small.tokens_per_s_per_stream >= 20 and small.ttft_s is not None and small.ttft_s <= 1.5
    assert small.users_per_gpu == pytest.approx(1000 / small.gpus)
    est = estimate_throughput(catalogue, d, prompt_tokens=1500, output_tokens=150, concurrency=small.batch_per_replica)
    assert small.replicas * est.output_tokens_per_s / 150 * 0.7 >= 5


def test_tight_slo_limits_the_batch(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="llama-3.1-8b", gpu="h100-sxm", quant="fp8", engine="vllm")
    loose = plan_capacity(catalogue, d, Demand(10), Slo(min_tokens_per_s=5))
    tight = plan_capacity(catalogue, d, Demand(10), Slo(min_tokens_per_s=100))
    assert tight.batch_per_replica < loose.batch_per_replica
    assert tight.limited_by == "slo"


def test_unreachable_slo_is_reported_not_raised(catalogue: Catalogue) -> None:
    d = resolve_deployment(catalogue, model="qwen2.5-7b", gpu="cpu-ddr4-3200", quant="Q4_K_M", memory_gb=16)
    plan = plan_capacity(catalogue, d, Demand(1), Slo(min_tokens_per_s=100))
    assert not plan.feasible and plan.gpus == 0 and plan.notes
