"""The pool: slots, the wait queue, health gating and outcomes, driven without I/O."""

from __future__ import annotations

import asyncio

import pytest

from inferlab.router import (
    BackendPool,
    BreakerPolicy,
    NoReplicaAvailable,
    Outcome,
    QueuePolicy,
    QueueRejected,
    QueueTimeout,
    Replica,
    RoundRobinStrategy,
    RoutingRequest,
)

from .fakes import FakeBackend


def make_pool(count: int = 2, limit: int = 1, depth: int = 4, wait_s: float = 5.0, **kw: object) -> BackendPool:
    replicas = [Replica(FakeBackend(f"r{i}"), limit=limit, breaker=BreakerPolicy(failure_threshold=1, probe_gated=False))
                for i in range(count)]
    return BackendPool("m", replicas, queue=QueuePolicy(depth, wait_s), strategy=RoundRobinStrategy(), **kw)  # type: ignore[arg-type]


def req(priority: int = 0) -> RoutingRequest:
    return RoutingRequest({}, priority=priority)


async def test_slots_are_limited_per_replica() -> None:
    pool = make_pool(count=2, limit=2)
    leases = [await pool.acquire(req()) for _ in range(4)]
    assert sorted(lease.replica.name for lease in leases) == ["r0", "r0", "r1", "r1"]
    assert pool.try_acquire(req()) is None
    for lease in leases:
        pool.release(lease, Outcome.SUCCESS)
    assert all(r.in_flight == 0 for r in pool.replicas)


async def test_full_queue_answers_503_with_retry_after() -> None:
    pool = make_pool(count=1, limit=1, depth=1)
    held = await pool.acquire(req())
    waiting = asyncio.create_task(pool.acquire(req()))
    await asyncio.sleep(0)
    with pytest.raises(QueueRejected) as caught:
        await pool.acquire(req())
    assert caught.value.status == 503 and "Retry-After" in caught.value.headers()
    pool.release(held, Outcome.SUCCESS)
    pool.release(await waiting, Outcome.SUCCESS)


async def test_waiters_are_served_in_order_then_by_priority() -> None:
    pool = make_pool(count=1, limit=1, depth=10)
    held = await pool.acquire(req())
    order: list[str] = []

    async def wait(tag: str, priority: int = 0) -> None:
        lease = await pool.acquire(req(priority))
        order.append(tag)
        await asyncio.sleep(0)
        pool.release(lease, Outcome.SUCCESS)

    tasks = [asyncio.create_task(wait(f"w{i}")) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(wait("urgent", priority=5)))
    await asyncio.sleep(0)
    assert len(pool.queue) == 4
    pool.release(held, Outcome.SUCCESS)
    await asyncio.gather(*tasks)
    assert order == ["urgent", "w0", "w1", "w2"]


async def test_wait_times_out_with_503() -> None:
    pool = make_pool(count=1, limit=1, wait_s=0.05)
    held = await pool.acquire(req())
    with pytest.raises(QueueTimeout) as caught:
        await pool.acquire(req())
    assert caught.value.status == 503 and caught.value.retry_after
    assert len(pool.queue) == 0
    pool.release(held, Outcome.SUCCESS)


async def test_cancelled_waiter_gives_its_place_and_lease_back() -> None:
    pool = make_pool(count=1, limit=1)
    held = await pool.acquire(req())
    waiter = asyncio.create_task(pool.acquire(req()))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    pool.release(held, Outcome.SUCCESS)
    assert pool.replicas[0].in_flight == 0 and len(pool.queue) == 0


async def test_nothing_healthy_is_503_at_once_and_fails_waiters() -> None:
    pool = make_pool(count=2, limit=1)
    a = await pool.acquire(req())
    b = await pool.acquire(req())
    waiter = asyncio.create_task(pool.acquire(req()))
    await asyncio.sleep(0)
    pool.release(a, Outcome.FAILURE)  # threshold 1: r? ejected, the waiter takes nothing from it
    pool.release(b, Outcome.FAILURE)
    with pytest.raises(NoReplicaAvailable) as caught:
        await waiter
    assert caught.value.status == 503 and caught.value.retry_after is not None
    with pytest.raises(NoReplicaAvailable):
        pool.try_acquire(req())
    assert not pool.is_ready()


async def test_unavailable_backend_is_skipped() -> None:
    pool = make_pool(count=2, limit=4)
    pool.replicas[0].backend.available = False  # type: ignore[attr-defined]
    leases = [await pool.acquire(req()) for _ in range(3)]
    assert {lease.replica.name for lease in leases} == {"r1"}
    snapshot = pool.snapshot()
    assert snapshot["replicas"][1]["in_flight"] == 3 and snapshot["strategy"] == "round_robin"


async def test_a_retry_waiting_for_an_untried_replica_does_not_block_others() -> None:
    pool = make_pool(count=2, limit=1)
    r0 = await pool.acquire(req())
    r1 = await pool.acquire(req())
    retry = asyncio.create_task(pool.acquire(req(), exclude=frozenset({r1.replica.name})))
    await asyncio.sleep(0)
    plain = asyncio.create_task(pool.acquire(req()))
    await asyncio.sleep(0)
    pool.release(r1, Outcome.SUCCESS)  # only the plain waiter may use it
    lease = await asyncio.wait_for(plain, 1)
    assert lease.replica is r1.replica and not retry.done()
    pool.release(r0, Outcome.SUCCESS)
    assert (await asyncio.wait_for(retry, 1)).replica is r0.replica
