"""GrantLeases: the grants a process holds are renewed together, and only while it holds them."""

from __future__ import annotations

import asyncio
import contextlib

from inferlab.resources import Amount, Grant, GrantLeases, MemoryAllocator, PoolCapacity, PoolConfig, Refusal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_renewal_keeps_held_grants_and_forgets_released_ones() -> None:
    clock = Clock()
    leases = GrantLeases(MemoryAllocator(lease_ttl_s=10.0, clock=clock))
    await leases.allocator.configure("p", PoolConfig(PoolCapacity(3, 1000)))
    first, second = await leases.admit("p", "t", 10, "a"), await leases.admit("p", "t", 10, "b")
    assert isinstance(first, Grant) and isinstance(second, Grant) and leases.held == 2
    assert isinstance(await leases.admit("p", "t", 5000, "too-big"), Refusal) and leases.held == 2
    clock.now = 8.0
    assert await leases.renew() == 2
    assert await leases.release(first) and not await leases.release(first)
    assert leases.held == 1
    clock.now = 16.0  # past the first TTL, within the renewed one
    assert await leases.renew() == 1
    usage = await leases.allocator.usage("p")
    assert usage is not None and usage.in_flight == Amount(1, 10) and usage.tenant("t").expired == 0


async def test_keep_renews_until_cancelled_then_the_grants_expire() -> None:
    leases = GrantLeases(MemoryAllocator(lease_ttl_s=0.3))
    await leases.allocator.configure("p", PoolConfig(PoolCapacity(1, 1000)))
    assert isinstance(await leases.admit("p", "t", 10, "a"), Grant)
    keeper = asyncio.create_task(leases.keep(0.1))
    await asyncio.sleep(0.6)  # twice the TTL
    assert isinstance(await leases.allocator.try_admit("p", "u", 10, "b"), Refusal)
    keeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    await asyncio.sleep(0.4)
    assert isinstance(await leases.allocator.try_admit("p", "u", 10, "c"), Grant)
    assert await leases.renew() == 0
