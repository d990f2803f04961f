"""Pools, monitors and scrapers from typed settings (called by the composition root).

A model's queue settings go to the scheduler (``inferlab.scheduler.build``), not to its pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from inferlab.config import ModelConfig
from inferlab.router.breaker import BreakerPolicy
from inferlab.router.health import HealthPolicy
from inferlab.router.pool import BackendPool, PoolObserver
from inferlab.router.replica import Replica, ReplicaEndpoint
from inferlab.router.retry import RetryBudget, RetryPolicy
from inferlab.router.strategies import PrefixPolicy, build_strategy
from inferlab.router.timeouts import TimeoutModel
from inferlab.types import InferenceBackend

DEFAULT_REMOTE_LIMIT = 256


def replica_limit(model: ModelConfig, managed: bool) -> int:
    if model.max_concurrency_per_replica is not None:
        return model.max_concurrency_per_replica
    return model.parallel if managed else DEFAULT_REMOTE_LIMIT


def build_pool(
    model: ModelConfig,
    replicas: Sequence[tuple[InferenceBackend, ReplicaEndpoint]],
    *,
    limit: int,
    observer: PoolObserver | None = None,
) -> BackendPool:
    health = model.health
    breaker = BreakerPolicy(
        failure_threshold=health.failure_threshold,
        ejection_base_s=health.ejection_base_s,
        ejection_max_s=health.ejection_max_s,
    )
    prefix = model.routing.prefix
    strategy = build_strategy(model.routing.strategy, PrefixPolicy(**prefix.model_dump()))
    retry = model.retry
    return BackendPool(
        model.name,
        [Replica(backend, limit=limit, endpoint=endpoint, breaker=breaker) for backend, endpoint in replicas],
        strategy=strategy,
        retry_budget=RetryBudget(ratio=retry.budget_ratio, min_per_s=retry.budget_min_per_s),
        retry=RetryPolicy(retry.max_attempts, retry.attempt_timeout_s, retry.first_byte_timeout_s,
                          retry.stream_idle_timeout_s),
        timeouts=TimeoutModel(retry.timeout_floor_s, retry.prefill_tokens_per_s, retry.decode_tokens_per_s,
                              model.context_size),
        observer=observer,
    )


def build_replica(model: ModelConfig, backend: InferenceBackend, endpoint: ReplicaEndpoint, *, limit: int) -> Replica:
    """One more replica of ``model`` (the autoscaler's), configured like ``build_pool``'s."""
    health = model.health
    breaker = BreakerPolicy(failure_threshold=health.failure_threshold, ejection_base_s=health.ejection_base_s,
                            ejection_max_s=health.ejection_max_s)
    return Replica(backend, limit=limit, endpoint=endpoint, breaker=breaker)


def health_policy(model: ModelConfig) -> HealthPolicy:
    health = model.health
    return HealthPolicy(health.probe_interval_s, health.probe_timeout_s, health.unhealthy_threshold)
