"""The queue's door and timers: deadlines refused at once from the measured drain rate, deadlines
expiring while waiting, per-class depth limits, and shedding the lowest sheddable class first."""

from __future__ import annotations

import asyncio
import time

import pytest

from inferlab.router import BackendPool, Outcome, Replica, RoundRobinStrategy, RoutingRequest
from inferlab.scheduler import (
    DeadlineExceeded,
    DeadlineUnreachable,
    QueuePolicy,
    QueueRejected,
    QueueShed,
    WaitQueues,
)
from tests.unit.router.fakes import FakeBackend


def make_pool(limit: int = 1) -> BackendPool:
    return BackendPool("m", [Replica(FakeBackend("r0"), limit=limit)], strategy=RoundRobinStrategy())


def req(priority: int = 1, deadline_s: float | None = None, tenant: str = "t") -> RoutingRequest:
    deadline = time.monotonic() + deadline_s if deadline_s is not None else None
    return RoutingRequest({}, priority=priority, tenant=tenant, deadline=deadline)


def measure_drain(queues: WaitQueues, pool: BackendPool, hold_s: float, samples: int = 5) -> None:
    """Requests that held the pool's slot ``hold_s`` each: the drain rate is 1 / hold_s per slot."""
    for _ in range(samples):
        request = req()
        request.dispatched_at = pool.clock() - hold_s
        queues.finished(pool, request, 10, 10)


async def queued(queues: WaitQueues, pool: BackendPool, request: RoutingRequest) -> asyncio.Task[object]:
    task: asyncio.Task[object] = asyncio.create_task(queues.acquire(pool, request))
    await asyncio.sleep(0)
    return task


async def test_a_deadline_the_drain_rate_cannot_meet_is_refused_at_once() -> None:
    pool, queues = make_pool(), WaitQueues({"m": QueuePolicy(max_depth=10, max_wait_s=30, aging_s=None)})
    measure_drain(queues, pool, hold_s=1.0)  # one slot freed per second
    held = await queues.acquire(pool, req())
    waiting = [await queued(queues, pool, req()) for _ in range(3)]  # 3 ahead: ~4 s until a newcomer starts
    started = time.monotonic()
    with pytest.raises(DeadlineUnreachable) as refused:
        await queues.acquire(pool, req(deadline_s=2.0))
    assert time.monotonic() - started < 0.05  # at once, not after two seconds
    assert refused.value.status == 503 and refused.value.headers()["Retry-After"] == "4"
    assert queues.snapshot(pool)["deadline_unreachable_total"] == 1
    reachable = await queued(queues, pool, req(deadline_s=10.0))  # 5 s is within 10: it waits
    assert queues.snapshot(pool)["depth"] == 4
    for task in [*waiting, reachable]:
        task.cancel()
    pool.release(held, Outcome.SUCCESS)


async def test_a_deadline_passing_while_waiting_ends_the_wait_with_503() -> None:
    pool, queues = make_pool(), WaitQueues({"m": QueuePolicy(max_depth=10, max_wait_s=30)})
    held = await queues.acquire(pool, req())
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as expired:  # no drain measured yet: it waits, then expires
        await queues.acquire(pool, req(deadline_s=0.1))
    assert 0.09 <= time.monotonic() - started < 0.5
    assert expired.value.status == 503 and expired.value.code == "deadline_exceeded" and expired.value.retry_after
    assert queues.snapshot(pool)["depth"] == 0 and queues.snapshot(pool)["deadline_expired_total"] == 1
    pool.release(held, Outcome.SUCCESS)


async def test_each_class_has_its_own_depth_limit() -> None:
    pool = make_pool()
    queues = WaitQueues({"m": QueuePolicy(max_depth=10, class_depth={0: 1})})
    held = await queues.acquire(pool, req())
    low = await queued(queues, pool, req(priority=0))
    with pytest.raises(QueueRejected) as refused:
        await queues.acquire(pool, req(priority=0))
    assert "low class" in refused.value.message and refused.value.retry_after
    normal = await queued(queues, pool, req(priority=1))  # other classes still queue
    assert queues.snapshot(pool)["by_class"] == {"low": 1, "normal": 1}
    pool.release(held, Outcome.SUCCESS)
    pool.release(await normal, Outcome.SUCCESS)  # type: ignore[arg-type]
    pool.release(await low, Outcome.SUCCESS)  # type: ignore[arg-type]


async def test_a_full_queue_sheds_the_newest_waiter_of_the_lowest_sheddable_class() -> None:
    pool = make_pool()
    queues = WaitQueues({"m": QueuePolicy(max_depth=3, sheddable=frozenset({0, 1}))})
    held = await queues.acquire(pool, req())
    low_old = await queued(queues, pool, req(priority=0))
    low_new = await queued(queues, pool, req(priority=0))
    normal = await queued(queues, pool, req(priority=1))
    high = await queued(queues, pool, req(priority=2))  # full: the newest low one makes room
    with pytest.raises(QueueShed) as shed:
        await low_new
    assert shed.value.status == 503 and shed.value.code == "shed" and shed.value.retry_after
    critical = await queued(queues, pool, req(priority=3))  # then the other low one
    with pytest.raises(QueueShed):
        await low_old
    with pytest.raises(QueueRejected):  # a low arrival never sheds anyone: it is refused
        await queues.acquire(pool, req(priority=0))
    another_high = await queued(queues, pool, req(priority=2))  # then normal (sheddable here too)
    with pytest.raises(QueueShed):
        await normal
    with pytest.raises(QueueRejected):  # high is not sheddable: a critical arrival is refused
        await queues.acquire(pool, req(priority=3))
    assert queues.snapshot(pool)["shed_total"] == 3
    pool.release(held, Outcome.SUCCESS)
    for task in (critical, high, another_high):
        pool.release(await task, Outcome.SUCCESS)  # type: ignore[arg-type]


async def test_retry_after_comes_from_the_drain_rate() -> None:
    pool = make_pool(limit=2)
    queues = WaitQueues({"m": QueuePolicy(max_depth=4, max_wait_s=60, aging_s=None)})
    measure_drain(queues, pool, hold_s=10.0)  # 2 slots, 10 s each: one slot every 5 s
    held = [await queues.acquire(pool, req()) for _ in range(2)]
    waiting = [await queued(queues, pool, req()) for _ in range(4)]
    with pytest.raises(QueueRejected) as refused:
        await queues.acquire(pool, req())
    assert refused.value.retry_after == pytest.approx(25.0, rel=0.01)  # 4 ahead + itself, one per 5 s
    for task in waiting:
        task.cancel()
    for lease in held:
        pool.release(lease, Outcome.SUCCESS)


async def test_a_class_with_headroom_leaves_slots_free_for_higher_classes() -> None:
    pool = make_pool(limit=3)
    queues = WaitQueues({"m": QueuePolicy(max_depth=10, headroom={0: 1})})
    low = [await queues.acquire(pool, req(priority=0)) for _ in range(2)]
    third = await queued(queues, pool, req(priority=0))  # one slot is free, but low leaves it
    assert queues.snapshot(pool)["depth"] == 1 and pool.free_slots() == 1
    high = await queues.acquire(pool, req(priority=2))  # at once: the kept slot
    assert pool.free_slots() == 0
    pool.release(high, Outcome.SUCCESS)
    await asyncio.sleep(0)
    assert not third.done()  # still only one free: kept
    pool.release(low[0], Outcome.SUCCESS)  # two free: the low waiter may take one
    lease = await asyncio.wait_for(third, 1)
    for held in (lease, low[1]):
        pool.release(held, Outcome.SUCCESS)  # type: ignore[arg-type]
