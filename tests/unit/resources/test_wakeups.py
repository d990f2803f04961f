"""Waiting for capacity in the memory allocator: a release wakes one waiter that may use it, not
every waiter (no thundering herd), and a wake nobody woken can use stops once all have tried."""

from __future__ import annotations

import asyncio

from inferlab.resources import Amount, Grant, PoolCapacity, PoolConfig, TenantShare
from inferlab.resources.memory import MemoryAllocator

KV = 100


def share(guarantee: int = 0, limit: int | None = None) -> TenantShare:
    return TenantShare(Amount(guarantee, guarantee * KV), None if limit is None else Amount(limit, 10**6), True)


async def waiting(allocator: MemoryAllocator, tenants: list[str]) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(allocator.wait_for_capacity("p", 5.0, tenant)) for tenant in tenants]
    await asyncio.sleep(0.01)
    return tasks


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_release_wakes_one_waiter_in_arrival_order() -> None:
    allocator = MemoryAllocator()
    await allocator.configure("p", PoolConfig(PoolCapacity(2, 10**6), {}))
    grants = [await allocator.try_admit("p", "b", KV, f"held-{i}") for i in range(2)]
    tasks = await waiting(allocator, ["b"] * 5)
    grant = grants[0]
    assert isinstance(grant, Grant)
    await allocator.release(grant)
    await settle()
    assert [task.done() for task in tasks] == [True, False, False, False, False]
    for task in tasks:
        task.cancel()


async def test_a_release_inside_a_guarantee_wakes_none_of_the_borrowers() -> None:
    allocator = MemoryAllocator()
    await allocator.configure("p", PoolConfig(PoolCapacity(4, 10**6), {"a": share(2)}))
    held_by_a = await allocator.try_admit("p", "a", KV, "a-1")
    for i in range(2):
        assert isinstance(await allocator.try_admit("p", "b", KV, f"b-{i}"), Grant)
    tasks = await waiting(allocator, ["b"] * 3)  # the pool is full for b: a's guarantee is held for a
    assert isinstance(held_by_a, Grant)
    await allocator.release(held_by_a)  # frees a's guaranteed slot, which b may not borrow
    await settle()
    assert not any(task.done() for task in tasks)
    for task in tasks:
        task.cancel()


async def test_a_wake_the_woken_cannot_use_passes_on_then_stops() -> None:
    allocator = MemoryAllocator()
    await allocator.configure("p", PoolConfig(PoolCapacity(3, 10**6), {"capped": share(0, limit=1)}))
    capped = await allocator.try_admit("p", "capped", KV, "c-1")
    others = [await allocator.try_admit("p", "free", KV, f"f-{i}") for i in range(2)]
    assert isinstance(capped, Grant) and all(isinstance(g, Grant) for g in others)
    first = await waiting(allocator, ["capped"])  # at its own limit: a release by another cannot help it
    rest = await waiting(allocator, ["free", "free"])
    released = others[0]
    assert isinstance(released, Grant)
    await allocator.release(released)
    await settle()
    assert first[0].done() and not rest[0].done()
    assert not isinstance(await allocator.try_admit("p", "capped", KV, "c-2"), Grant)
    again = await waiting(allocator, ["capped"])  # it waits again: the wake goes to the next waiter
    await settle()
    assert rest[0].done() and not rest[1].done()
    assert isinstance(await allocator.try_admit("p", "free", KV, "f-9"), Grant)
    await settle()
    assert not rest[1].done() and not again[0].done()  # used: nobody else is woken for it
    for task in [*rest, *again]:
        task.cancel()


async def test_a_waiter_returns_at_its_timeout_and_a_capacity_change_wakes_all() -> None:
    allocator = MemoryAllocator()
    await allocator.configure("p", PoolConfig(PoolCapacity(1, 10**6), {}))
    await allocator.try_admit("p", "b", KV, "held")
    await asyncio.wait_for(allocator.wait_for_capacity("p", 0.05, "b"), 1.0)
    tasks = await waiting(allocator, ["b"] * 3)
    await allocator.configure("p", PoolConfig(PoolCapacity(4, 10**6), {}))
    await settle()
    assert all(task.done() for task in tasks)
