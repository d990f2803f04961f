"""The wait queue in front of a pool: bounds, order, timeouts, cancellation, failing fast."""

from __future__ import annotations

import asyncio

import pytest

from inferlab.router import (
    BackendPool,
    BreakerPolicy,
    Lease,
    NoReplicaAvailable,
    Outcome,
    Replica,
    RoundRobinStrategy,
    RoutingRequest,
)
from inferlab.scheduler import (
    FifoPolicy,
    QueueManager,
    QueuePolicy,
    QueueRejected,
    QueueTimeout,
    WaiterView,
    WaitQueues,
)
from tests.unit.router.fakes import FakeBackend


def make_pool(count: int = 2, limit: int = 1) -> BackendPool:
    breaker = BreakerPolicy(failure_threshold=1, probe_gated=False)
    replicas = [Replica(FakeBackend(f"r{i}"), limit=limit, breaker=breaker) for i in range(count)]
    return BackendPool("m", replicas, strategy=RoundRobinStrategy())


def make_queues(depth: int = 4, wait_s: float = 5.0, **kw: object) -> WaitQueues:
    return WaitQueues({"m": QueuePolicy(depth, wait_s, **kw)})  # type: ignore[arg-type]


def req(priority: int = 0) -> RoutingRequest:
    return RoutingRequest({}, priority=priority)


def depth(queues: WaitQueues, pool: BackendPool) -> int:
    return int(queues.snapshot(pool)["depth"])


async def test_a_free_slot_is_taken_at_once() -> None:
    pool, queues = make_pool(count=2, limit=2), make_queues()
    leases = [await queues.acquire(pool, req()) for _ in range(4)]
    assert sorted(lease.replica.name for lease in leases) == ["r0", "r0", "r1", "r1"]
    assert depth(queues, pool) == 0 and queues.snapshot(pool)["queued_total"] == 0
    for lease in leases:
        pool.release(lease, Outcome.SUCCESS)


async def test_full_queue_answers_503_with_retry_after() -> None:
    pool, queues = make_pool(count=1, limit=1), make_queues(depth=1)
    held = await queues.acquire(pool, req())
    waiting = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    with pytest.raises(QueueRejected) as caught:
        await queues.acquire(pool, req())
    assert caught.value.status == 503 and "Retry-After" in caught.value.headers()
    pool.release(held, Outcome.SUCCESS)
    pool.release(await waiting, Outcome.SUCCESS)
    snapshot = queues.snapshot(pool)
    assert {k: snapshot[k] for k in ("depth", "max_depth", "max_wait_s", "policy", "queued_total", "rejected_total",
                                     "timed_out_total", "shed_total")} == {
        "depth": 0, "max_depth": 1, "max_wait_s": 5.0, "policy": "tiered", "queued_total": 1, "rejected_total": 1,
        "timed_out_total": 0, "shed_total": 0}


async def served_order(queues: WaitQueues, pool: BackendPool, arrivals: list[tuple[str, int]]) -> list[str]:
    """Hold the only slot, queue ``arrivals`` (tag, priority) one by one, free the slot: who went when."""
    held = await queues.acquire(pool, req())
    order: list[str] = []

    async def wait(tag: str, priority: int) -> None:
        lease = await queues.acquire(pool, req(priority))
        order.append(tag)
        await asyncio.sleep(0)
        pool.release(lease, Outcome.SUCCESS)

    tasks = []
    for tag, priority in arrivals:
        tasks.append(asyncio.create_task(wait(tag, priority)))
        await asyncio.sleep(0)
    assert depth(queues, pool) == len(arrivals)
    pool.release(held, Outcome.SUCCESS)
    await asyncio.gather(*tasks)
    return order


async def test_waiters_are_served_by_class_then_in_order() -> None:
    order = await served_order(make_queues(depth=10), make_pool(count=1, limit=1),
                               [("w0", 1), ("w1", 1), ("w2", 1), ("urgent", 3)])
    assert order == ["urgent", "w0", "w1", "w2"]


async def test_fifo_ignores_the_class() -> None:
    order = await served_order(make_queues(depth=10, scheduling=FifoPolicy), make_pool(count=1, limit=1),
                               [("w0", 1), ("w1", 1), ("urgent", 3), ("w3", 1)])
    assert order == ["w0", "w1", "urgent", "w3"]


class LastComeFirstServed(FifoPolicy):
    """A test policy: the newest waiter first, whatever its class; it records what it was told."""

    name = "lifo"

    def __init__(self) -> None:
        super().__init__()
        self.dispatched_seqs: list[int] = []
        self._stack: list[WaiterView] = []

    def push(self, waiter: WaiterView) -> None:
        super().push(waiter)
        self._stack.append(waiter)

    def peek(self, now: float, lowest: int = 0) -> WaiterView | None:
        while self._stack and not self._stack[-1].queued:
            self._stack.pop()
        return self._stack[-1] if self._stack else None

    def dispatched(self, request: RoutingRequest) -> None:
        self.dispatched_seqs.append(int(request.body.get("seq", -1)))


async def test_a_scheduling_policy_decides_the_order_alone() -> None:
    policies: list[LastComeFirstServed] = []

    def lifo() -> LastComeFirstServed:
        policies.append(LastComeFirstServed())
        return policies[-1]

    pool, queues = make_pool(count=1, limit=1), make_queues(depth=10, scheduling=lifo)
    order = await served_order(queues, pool, [("w0", 0), ("w1", 0), ("urgent", 3), ("w3", 0)])
    assert order == ["w3", "urgent", "w1", "w0"]
    assert len(policies) == 1 and len(policies[0].dispatched_seqs) == 5  # one policy per queue, told of every slot
    assert queues.snapshot(pool)["policy"] == "lifo"


async def test_wait_times_out_with_503() -> None:
    pool, queues = make_pool(count=1, limit=1), make_queues(wait_s=0.05)
    held = await queues.acquire(pool, req())
    with pytest.raises(QueueTimeout) as caught:
        await queues.acquire(pool, req())
    assert caught.value.status == 503 and caught.value.retry_after
    assert depth(queues, pool) == 0 and queues.snapshot(pool)["timed_out_total"] == 1
    pool.release(held, Outcome.SUCCESS)


async def test_cancelled_waiter_gives_its_place_and_lease_back() -> None:
    pool, queues = make_pool(count=1, limit=1), make_queues()
    held = await queues.acquire(pool, req())
    waiter = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    pool.release(held, Outcome.SUCCESS)
    assert pool.replicas[0].in_flight == 0 and depth(queues, pool) == 0


async def test_a_slot_freed_between_cancel_and_abandon_goes_to_the_next_waiter() -> None:
    pool, queues = make_pool(count=1, limit=1), make_queues()
    held = await queues.acquire(pool, req())
    cancelled = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    behind = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    cancelled.cancel()  # its future is cancelled now; its task runs its clean-up later
    pool.release(held, Outcome.SUCCESS)  # in the same step: the slot must skip it, not fail
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    lease = await asyncio.wait_for(behind, 1)
    pool.release(lease, Outcome.SUCCESS)
    assert pool.replicas[0].in_flight == 0 and depth(queues, pool) == 0


async def test_nothing_healthy_fails_waiters_at_once() -> None:
    pool, queues = make_pool(count=2, limit=1), make_queues()
    a = await queues.acquire(pool, req())
    b = await queues.acquire(pool, req())
    waiter = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    pool.release(a, Outcome.FAILURE)  # threshold 1: r? ejected, the waiter takes nothing from it
    pool.release(b, Outcome.FAILURE)
    with pytest.raises(NoReplicaAvailable) as caught:
        await waiter
    assert caught.value.status == 503 and caught.value.retry_after is not None
    with pytest.raises(NoReplicaAvailable):
        await queues.acquire(pool, req())


async def test_nothing_routable_is_503_at_once_even_behind_waiters() -> None:
    pool, queues = make_pool(count=2, limit=1), make_queues()
    held = [await queues.acquire(pool, req()) for _ in range(2)]
    waiter = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    with pytest.raises(NoReplicaAvailable):
        await queues.acquire(pool, req(), exclude=frozenset({"r0", "r1"}))  # a retry with nowhere left
    for lease in held:
        pool.release(lease, Outcome.SUCCESS)
    pool.release(await waiter, Outcome.SUCCESS)


async def test_a_probe_verdict_fails_waiters_when_nothing_is_left() -> None:
    pool, queues = make_pool(count=1, limit=1), make_queues()
    held = await queues.acquire(pool, req())
    waiter = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    pool.replicas[0].backend.available = False  # type: ignore[attr-defined]
    pool.capacity_changed()  # what the health monitor signals when an engine goes away
    with pytest.raises(NoReplicaAvailable):
        await asyncio.wait_for(waiter, 1)
    pool.release(held, Outcome.NEUTRAL)


async def test_a_retry_waiting_for_an_untried_replica_does_not_block_others() -> None:
    pool, queues = make_pool(count=2, limit=1), make_queues()
    r0 = await queues.acquire(pool, req())
    r1 = await queues.acquire(pool, req())
    retry = asyncio.create_task(queues.acquire(pool, req(), exclude=frozenset({r1.replica.name})))
    await asyncio.sleep(0)
    plain = asyncio.create_task(queues.acquire(pool, req()))
    await asyncio.sleep(0)
    pool.release(r1, Outcome.SUCCESS)  # only the plain waiter may use it
    lease = await asyncio.wait_for(plain, 1)
    assert lease.replica is r1.replica and not retry.done()
    pool.release(r0, Outcome.SUCCESS)
    assert (await asyncio.wait_for(retry, 1)).replica is r0.replica


async def test_each_pool_has_its_own_queue_and_policy() -> None:
    pools = [BackendPool(name, [Replica(FakeBackend(name), limit=1)]) for name in ("m", "other")]
    queues = WaitQueues({"m": QueuePolicy(max_depth=0)}, default=QueuePolicy(max_depth=1))
    held: list[Lease] = [await queues.acquire(pool, req()) for pool in pools]
    with pytest.raises(QueueRejected):
        await queues.acquire(pools[0], req())  # depth 0: never waits
    waiting = asyncio.create_task(queues.acquire(pools[1], req()))
    await asyncio.sleep(0)
    assert [depth(queues, pool) for pool in pools] == [0, 1]
    for lease, pool in zip(held, pools, strict=True):
        pool.release(lease, Outcome.SUCCESS)
    pools[1].release(await waiting, Outcome.SUCCESS)


def test_wait_queues_are_a_queue_manager() -> None:
    manager: QueueManager = WaitQueues()
    assert manager.snapshot(make_pool())["max_depth"] == QueuePolicy().max_depth
