"""The pool: slots, health gating, outcomes and the capacity signal, driven without I/O.

Waiting for a slot is the scheduler's: ``tests/unit/scheduler/test_queue.py``.
"""

from __future__ import annotations

import pytest

from inferlab.router import (
    BackendPool,
    BreakerPolicy,
    HealthMonitor,
    NoReplicaAvailable,
    Outcome,
    Replica,
    RoundRobinStrategy,
    RoutingRequest,
)

from .fakes import FakeBackend


def make_pool(count: int = 2, limit: int = 1, **kw: object) -> BackendPool:
    replicas = [Replica(FakeBackend(f"r{i}"), limit=limit, breaker=BreakerPolicy(failure_threshold=1, probe_gated=False))
                for i in range(count)]
    return BackendPool("m", replicas, strategy=RoundRobinStrategy(), **kw)  # type: ignore[arg-type]


def req(priority: int = 0) -> RoutingRequest:
    return RoutingRequest({}, priority=priority)


def test_slots_are_limited_per_replica() -> None:
    pool = make_pool(count=2, limit=2)
    leases = [pool.try_acquire(req()) for _ in range(4)]
    assert sorted(lease.replica.name for lease in leases if lease is not None) == ["r0", "r0", "r1", "r1"]
    assert pool.try_acquire(req()) is None
    for lease in leases:
        assert lease is not None
        pool.release(lease, Outcome.SUCCESS)
    assert all(r.in_flight == 0 for r in pool.replicas)


def test_nothing_healthy_is_503_at_once() -> None:
    pool = make_pool(count=2, limit=1)
    a, b = pool.try_acquire(req()), pool.try_acquire(req())
    assert a is not None and b is not None
    pool.release(a, Outcome.FAILURE)  # threshold 1: ejected
    pool.release(b, Outcome.FAILURE)
    with pytest.raises(NoReplicaAvailable) as caught:
        pool.try_acquire(req())
    assert caught.value.status == 503 and caught.value.retry_after is not None
    with pytest.raises(NoReplicaAvailable):
        pool.ensure_routable()
    assert not pool.is_ready()


def test_excluded_replicas_are_not_routable() -> None:
    pool = make_pool(count=2, limit=1)
    pool.ensure_routable(frozenset({"r0"}))
    with pytest.raises(NoReplicaAvailable):
        pool.ensure_routable(frozenset({"r0", "r1"}))
    with pytest.raises(NoReplicaAvailable):
        pool.try_acquire(req(), frozenset({"r0", "r1"}))
    lease = pool.try_acquire(req(), frozenset({"r0"}))
    assert lease is not None and lease.replica.name == "r1"


def test_unavailable_backend_is_skipped() -> None:
    pool = make_pool(count=2, limit=4)
    pool.replicas[0].backend.available = False  # type: ignore[attr-defined]
    leases = [pool.try_acquire(req()) for _ in range(3)]
    assert {lease.replica.name for lease in leases if lease is not None} == {"r1"}
    snapshot = pool.snapshot()
    assert snapshot["replicas"][1]["in_flight"] == 3 and snapshot["strategy"] == "round_robin"


def test_capacity_signal_on_every_freed_slot_and_routability_change() -> None:
    calls: list[str] = []
    pool = make_pool(count=1, limit=1, listeners=[lambda p: calls.append("ctor:" + p.model)])
    pool.subscribe(lambda p: calls.append("sub:" + p.model))
    lease = pool.try_acquire(req())
    assert lease is not None and calls == []  # taking a slot frees nothing
    pool.release(lease, Outcome.FAILURE)  # a slot freed, and the breaker opened
    assert calls == ["ctor:m", "sub:m"]
    pool.release(lease, Outcome.SUCCESS)  # released already: nothing happens
    assert calls == ["ctor:m", "sub:m"]
    pool.capacity_changed()  # what the health monitor calls on a probe verdict
    assert calls == ["ctor:m", "sub:m"] * 2


def test_health_verdicts_and_engines_going_away_signal_capacity() -> None:
    calls: list[BackendPool] = []
    pool = make_pool(count=1, limit=1, listeners=[calls.append])
    monitor = HealthMonitor([pool])
    monitor.record_probe(pool, pool.replicas[0], False, "down")
    assert calls == [pool]
    pool.replicas[0].backend.available = False  # type: ignore[attr-defined]
    monitor._watch_availability(pool)
    assert calls == [pool, pool]
    monitor._watch_availability(pool)  # nothing changed: no signal
    assert calls == [pool, pool]
