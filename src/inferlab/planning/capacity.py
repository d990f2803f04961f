"""Capacity: how many replicas and GPUs a load needs under a latency SLO.

A replica runs the largest batch that still meets the SLO (tokens/s per stream and TTFT) and fits
its KV pool; its request rate is its output tokens/s over the output tokens per request. Replicas
are sized so that each runs at ``target_utilisation`` of that rate at the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.memory import largest_int, validate_positive
from inferlab.planning.throughput import ThroughputEstimate, estimate_throughput, saturated_batch


@dataclass(frozen=True)
class Demand:
    requests_per_second: float  # at the peak
    prompt_tokens: int = 512
    output_tokens: int = 256
    users: int | None = None


@dataclass(frozen=True)
class Slo:
    ttft_s: float = 2.0
    min_tokens_per_s: float = 10.0  # per stream


@dataclass(frozen=True)
class CapacityPlan:
    deployment: str
    feasible: bool
    batch_per_replica: int
    replica_requests_per_s: float
    replicas: int
    gpus: int
    users_per_gpu: float | None
    ttft_s: float | None
    tokens_per_s_per_stream: float
    limited_by: str  # "slo" | "memory" | "engine batch limit" | "slo not met at batch 1"
    notes: tuple[str, ...] = ()


def demand_from_users(
    users: int, *, active_fraction: float, requests_per_active_user_per_minute: float, prompt_tokens: int, output_tokens: int
) -> Demand:
    """Peak demand of a user base: the share active at once x their request rate."""
    if users < 1:
        raise InvalidRequest(f"users must be at least 1, got {users}", param="users")
    if not 0 < active_fraction <= 1:
        raise InvalidRequest(f"active_fraction must be in (0, 1], got {active_fraction}", param="active_fraction")
    validate_positive(requests_per_active_user_per_minute, "requests_per_active_user_per_minute")
    rps = users * active_fraction * requests_per_active_user_per_minute / 60
    return Demand(rps, prompt_tokens, output_tokens, users)


def _meets(est: ThroughputEstimate, slo: Slo) -> bool:
    ttft_ok = est.ttft_s is None or est.ttft_s <= slo.ttft_s
    return ttft_ok and est.tokens_per_s_per_stream >= slo.min_tokens_per_s


def plan_capacity(
    catalogue: Catalogue, d: Deployment, demand: Demand, slo: Slo | None = None, *, target_utilisation: float = 0.7
) -> CapacityPlan:
    slo = slo or Slo()
    validate_positive(demand.requests_per_second, "requests_per_second")
    validate_positive(slo.ttft_s, "ttft_s")
    validate_positive(slo.min_tokens_per_s, "min_tokens_per_s")
    if not 0 < target_utilisation <= 1:
        raise InvalidRequest("target_utilisation must be in (0, 1]", param="target_utilisation")
    engine_cap = d.engine.default_max_batch
    cap = saturated_batch(catalogue, d, demand.prompt_tokens, demand.output_tokens, engine_cap)

    def estimate(batch: int) -> ThroughputEstimate:
        return estimate_throughput(
            catalogue, d, prompt_tokens=demand.prompt_tokens, output_tokens=demand.output_tokens, concurrency=batch
        )

    if cap == 0:
        return _infeasible(d, estimate(1), "memory", "one request of this size does not fit in memory")
    by_slo = largest_int(lambda b: b <= cap and _meets(estimate(b), slo))
    if by_slo == 0:
        return _infeasible(d, estimate(1), "slo not met at batch 1", "the SLO cannot be met even one request at a time")
    batch = min(by_slo, cap)
    limited_by = "slo" if by_slo < cap else ("engine batch limit" if cap == engine_cap else "memory")
    est = estimate(batch)
    replica_rps = est.output_tokens_per_s / demand.output_tokens
    replicas = max(1, math.ceil(demand.requests_per_second / (replica_rps * target_utilisation)))
    gpus = replicas * d.devices
    return CapacityPlan(
        deployment=d.label(),
        feasible=True,
        batch_per_replica=batch,
        replica_requests_per_s=replica_rps,
        replicas=replicas,
        gpus=gpus,
        users_per_gpu=demand.users / gpus if demand.users else None,
        ttft_s=est.ttft_s,
        tokens_per_s_per_stream=est.tokens_per_s_per_stream,
        limited_by=limited_by,
        notes=est.notes,
    )


def _infeasible(d: Deployment, est: ThroughputEstimate, limited_by: str, note: str) -> CapacityPlan:
    return CapacityPlan(
        deployment=d.label(),
        feasible=False,
        batch_per_replica=0,
        replica_requests_per_s=0.0,
        replicas=0,
        gpus=0,
        users_per_gpu=None,
        ttft_s=est.ttft_s,
        tokens_per_s_per_stream=est.tokens_per_s_per_stream,
        limited_by=limited_by,
        notes=(note, *est.notes),
    )
