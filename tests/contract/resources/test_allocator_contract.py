"""The ResourceAllocator contract: guarantees kept, limits never passed, idle capacity lent and
handed back, every grant released exactly once — by every implementation."""

from __future__ import annotations

import asyncio
import time

from inferlab.resources import (
    Amount,
    Grant,
    PoolCapacity,
    PoolConfig,
    Refusal,
    ResourceAllocator,
    TenantShare,
)

from .conftest import MakeAllocator

KV = 100  # KV tokens per request in most tests: the sequence dimension decides


def pool(sequences: int, kv_tokens: int = 1_000_000, overcommit: float = 1.0, **shares: TenantShare) -> PoolConfig:
    return PoolConfig(PoolCapacity(sequences, kv_tokens, overcommit), shares)


def share(guarantee: int = 0, limit: int | None = None, *, may_borrow: bool = True, kv: int = 1_000_000) -> TenantShare:
    return TenantShare(Amount(guarantee, guarantee * KV), None if limit is None else Amount(limit, kv), may_borrow)


async def admit_many(allocator: ResourceAllocator, tenant: str, count: int, *, name: str = "p",
                     kv: int = KV) -> list[Grant | Refusal]:
    return [await allocator.try_admit(name, tenant, kv - 1, f"{tenant}-{time.monotonic_ns()}-{i}") for i in range(count)]


def granted(results: list[Grant | Refusal]) -> list[Grant]:
    return [r for r in results if isinstance(r, Grant)]


def reasons(results: list[Grant | Refusal]) -> list[str]:
    return [r.reason for r in results if isinstance(r, Refusal)]


async def test_admits_up_to_the_capacity_then_refuses(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(5))
    results = await admit_many(allocator, "t", 7)
    assert len(granted(results)) == 5
    assert reasons(results) == ["pool_full", "pool_full"]
    refusal = results[-1]
    assert isinstance(refusal, Refusal) and refusal.can_wait and "no idle capacity" in refusal.message


async def test_a_request_reserves_prompt_plus_max_tokens_of_kv(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(100, kv_tokens=1000))
    first = await allocator.try_admit("p", "t", 600, "r1")
    assert isinstance(first, Grant) and first.amount == Amount(1, 600)
    refused = await allocator.try_admit("p", "t", 401, "r2")
    assert isinstance(refused, Refusal) and refused.reason == "pool_full"
    assert isinstance(await allocator.try_admit("p", "t", 400, "r3"), Grant)


async def test_guarantee_honoured_while_another_tenant_floods(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(10, gold=share(4)))
    flood = await admit_many(allocator, "bulk", 20)
    assert len(granted(flood)) == 6  # what gold does not hold is kept for it
    gold = await admit_many(allocator, "gold", 4)
    assert len(granted(gold)) == 4
    gold_borrowing = await admit_many(allocator, "gold", 1)
    assert reasons(gold_borrowing) == ["pool_full"]


async def test_borrowed_capacity_is_handed_back_as_borrowed_requests_end(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(10, gold=share(4)))
    bulk = granted(await admit_many(allocator, "bulk", 6))
    assert all(g.borrowed == g.amount for g in bulk)  # bulk has no guarantee: all of it is borrowed
    assert await allocator.release(bulk[0])
    more = await admit_many(allocator, "bulk", 2)
    assert len(granted(more)) == 1  # one came back, not two: gold's 4 stay kept
    usage = await allocator.usage("p")
    assert usage is not None
    assert usage.tenant("bulk").held == Amount(6, 6 * (KV - 1)) and usage.tenant("bulk").borrowed == Amount(6, 6 * (KV - 1))
    assert usage.tenant("gold").held == Amount() and usage.idle == Amount(0, usage.idle.kv_tokens)


async def test_a_request_straddling_the_guarantee_borrows_only_its_excess(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", PoolConfig(PoolCapacity(10, 1000), {"t": TenantShare(Amount(2, 150))}))
    first = await allocator.try_admit("p", "t", 100, "a")
    second = await allocator.try_admit("p", "t", 100, "b")
    assert isinstance(first, Grant) and isinstance(second, Grant)
    assert first.borrowed == Amount(0, 0)
    assert second.borrowed == Amount(0, 50)  # 200 KV tokens held against a guarantee of 150
    usage = await allocator.usage("p")
    assert usage is not None and usage.tenant("t").borrowed == Amount(0, 50)
    assert usage.committed == Amount(2, 200)


async def test_a_tenant_never_exceeds_its_limit(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(100, capped=share(1, limit=3)))
    results = await admit_many(allocator, "capped", 5)
    assert len(granted(results)) == 3 and reasons(results) == ["tenant_limit", "tenant_limit"]
    refusal = results[-1]
    assert isinstance(refusal, Refusal) and refusal.can_wait and "limit" in refusal.message


async def test_a_tenant_that_may_not_borrow_stays_within_its_guarantee(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(100, fixed=share(2, may_borrow=False)))
    results = await admit_many(allocator, "fixed", 3)
    assert len(granted(results)) == 2 and reasons(results) == ["no_borrowing"]


async def test_a_request_that_can_never_fit_is_told_so(allocator: ResourceAllocator) -> None:
    config = PoolConfig(PoolCapacity(10, 1000), {
        "capped": TenantShare(limit=Amount(5, 300)),
        "fixed": TenantShare(Amount(2, 200), may_borrow=False),
    })
    await allocator.configure("p", config)
    cases = [("anyone", 1001), ("capped", 301), ("fixed", 201)]  # the pool's, the limit's, the guarantee's ceiling
    for tenant, kv in cases:
        refusal = await allocator.try_admit("p", tenant, kv, f"big-{tenant}")
        assert isinstance(refusal, Refusal) and refusal.reason == "request_too_large", tenant
        assert not refusal.can_wait and "lower max_tokens" in refusal.message
    assert isinstance(await allocator.try_admit("p", "capped", 300, "fits"), Grant)


async def test_an_unknown_pool_is_refused(allocator: ResourceAllocator) -> None:
    refusal = await allocator.try_admit("nowhere", "t", 10, "r")
    assert isinstance(refusal, Refusal) and refusal.reason == "unknown_pool" and not refusal.can_wait
    assert await allocator.usage("nowhere") is None


async def test_every_grant_is_released_exactly_once(make_allocator: MakeAllocator) -> None:
    gateway, other_gateway = make_allocator(), make_allocator()
    await gateway.configure("p", pool(2))
    grants = granted(await admit_many(gateway, "t", 2))
    first = await asyncio.gather(gateway.release(grants[0]), other_gateway.release(grants[0]), gateway.release(grants[0]))
    assert sorted(first) == [False, False, True]  # completion, disconnect and timeout raced: one release
    assert await other_gateway.release(grants[1]) and not await gateway.release(grants[1])
    usage = await gateway.usage("p")
    assert usage is not None and usage.in_flight == Amount() and usage.committed == Amount()
    assert len(granted(await admit_many(gateway, "t", 3))) == 2  # two back, not four


async def test_admitting_a_held_request_id_again_charges_nothing(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(5))
    first = await allocator.try_admit("p", "t", 10, "same")
    again = await allocator.try_admit("p", "t", 10, "same")
    assert isinstance(first, Grant) and again == first
    usage = await allocator.usage("p")
    assert usage is not None and usage.in_flight == Amount(1, 10) and usage.tenant("t").admitted == 1


async def test_a_stale_grant_does_not_release_a_later_one_with_its_request_id(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(5))
    old = await allocator.try_admit("p", "t", 10, "reused")
    assert isinstance(old, Grant) and await allocator.release(old)
    new = await allocator.try_admit("p", "t", 20, "reused")
    assert isinstance(new, Grant) and new.token != old.token
    assert not await allocator.release(old)
    usage = await allocator.usage("p")
    assert usage is not None and usage.in_flight == Amount(1, 20)
    assert await allocator.release(new)


async def test_concurrent_admissions_never_exceed_the_capacity(make_allocator: MakeAllocator) -> None:
    gateways = [make_allocator(), make_allocator(), make_allocator()]
    await gateways[0].configure("p", pool(37, gold=share(7)))
    results = await asyncio.gather(*(
        gateways[i % 3].try_admit("p", "gold" if i % 5 == 0 else f"t{i % 4}", 10, f"r{i}") for i in range(200)
    ))
    gold = [r for i, r in enumerate(results) if i % 5 == 0]
    assert sum(isinstance(r, Grant) for r in results) == 37
    assert sum(isinstance(r, Grant) for r in gold) >= 7
    usage = await gateways[1].usage("p")
    assert usage is not None and usage.in_flight.sequences == 37


async def test_overcommit_scales_the_capacity(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(4, overcommit=1.5))
    assert len(granted(await admit_many(allocator, "t", 8))) == 6


async def test_a_share_changed_while_held_breaks_no_running_grant(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(10, t=share(0, limit=6)))
    held = granted(await admit_many(allocator, "t", 6))
    assert len(held) == 6
    await allocator.configure("p", pool(10, t=share(0, limit=2)))  # now over its new limit: nothing preempted
    usage = await allocator.usage("p")
    assert usage is not None and usage.tenant("t").held.sequences == 6 and usage.tenant("t").grants == 6
    assert reasons(await admit_many(allocator, "t", 1)) == ["tenant_limit"]
    for grant in held[:5]:
        assert await allocator.release(grant)
    assert len(granted(await admit_many(allocator, "t", 2))) == 1  # 1 held + 1 = the new limit


async def test_a_capacity_lowered_under_the_load_admits_nothing_until_it_drains(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(10, gold=share(2)))
    bulk = granted(await admit_many(allocator, "bulk", 8))
    await allocator.configure("p", pool(4, gold=share(2)))
    gold = await admit_many(allocator, "gold", 1)
    assert reasons(gold) == ["overbooked"]  # within its guarantee, but 8 in flight on a capacity of 4
    for grant in bulk[:6]:
        await allocator.release(grant)
    assert len(granted(await admit_many(allocator, "gold", 2))) == 2
    usage = await allocator.usage("p")
    assert usage is not None and usage.in_flight.sequences == 4


async def test_an_overbooked_pool_never_exceeds_its_capacity_and_says_so(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(10, a=share(8), b=share(8)))
    a = await admit_many(allocator, "a", 8)
    b = await admit_many(allocator, "b", 8)
    assert len(granted(a)) == 8 and len(granted(b)) == 2  # first come, within guarantees
    assert reasons(b) == ["overbooked"] * 6
    assert reasons(await admit_many(allocator, "c", 1)) == ["pool_full"]
    usage = await allocator.usage("p")
    assert usage is not None
    assert usage.config.overbooked == Amount(6, 0)
    assert usage.in_flight.sequences == 10


async def test_usage_reports_each_tenant(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", PoolConfig(PoolCapacity(4, 1000, 1.5), {
        "gold": TenantShare(Amount(2, 200), Amount(4, 600)), "idle": TenantShare(Amount(1, 100)),
    }, TenantShare(limit=Amount(2, 1000))))
    for i in range(3):
        await allocator.try_admit("p", "gold", 100, f"g{i}")
    await allocator.try_admit("p", "other", 100, "o1")
    await allocator.try_admit("p", "other", 100, "o2")
    await allocator.try_admit("p", "other", 100, "o3")
    await allocator.try_admit("p", "other", 5000, "o4")
    usage = await allocator.usage("p")
    assert usage is not None
    assert usage.config.capacity == PoolCapacity(4, 1000, 1.5) and usage.effective == Amount(6, 1500)
    assert [t.tenant for t in usage.tenants] == ["gold", "idle", "other"]
    gold, idle, other = usage.tenants
    assert (gold.held, gold.borrowed, gold.grants, gold.admitted) == (Amount(3, 300), Amount(1, 100), 3, 3)
    assert gold.share == TenantShare(Amount(2, 200), Amount(4, 600))
    assert (idle.held, idle.grants, idle.refused) == (Amount(), 0, {})
    assert (other.held, other.admitted) == (Amount(2, 200), 2)
    assert other.refused == {"tenant_limit": 1, "request_too_large": 1}
    assert usage.in_flight == Amount(5, 500) and usage.committed == Amount(6, 600)


async def test_a_waiter_wakes_when_another_gateway_releases(make_allocator: MakeAllocator) -> None:
    waiting_gateway, releasing_gateway = make_allocator(), make_allocator()
    await waiting_gateway.configure("p", pool(1))
    grant = await releasing_gateway.try_admit("p", "t", 10, "held")
    assert isinstance(grant, Grant)
    assert isinstance(await waiting_gateway.try_admit("p", "u", 10, "queued"), Refusal)
    started = time.monotonic()
    waiter = asyncio.create_task(waiting_gateway.wait_for_capacity("p", 5.0))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await releasing_gateway.release(grant)
    await asyncio.wait_for(waiter, 2.0)
    assert time.monotonic() - started < 1.5
    assert isinstance(await waiting_gateway.try_admit("p", "u", 10, "queued"), Grant)


async def test_a_waiter_wakes_when_the_capacity_grows(make_allocator: MakeAllocator) -> None:
    waiting_gateway, admin = make_allocator(), make_allocator()
    await admin.configure("p", pool(1))
    waiter = asyncio.create_task(waiting_gateway.wait_for_capacity("p", 5.0))
    await asyncio.sleep(0.3)
    await admin.configure("p", pool(2))
    await asyncio.wait_for(waiter, 2.0)


async def test_a_waiter_returns_at_its_timeout(allocator: ResourceAllocator) -> None:
    await allocator.configure("p", pool(1))
    started = time.monotonic()
    await allocator.wait_for_capacity("p", 0.3)
    assert 0.25 <= time.monotonic() - started < 1.5


async def test_a_grant_nobody_renews_frees_after_its_ttl(make_allocator: MakeAllocator) -> None:
    allocator = make_allocator(lease_ttl_s=0.3)
    await allocator.configure("p", pool(1))
    grant = await allocator.try_admit("p", "crashed", 10, "r1")  # its gateway dies here
    assert isinstance(grant, Grant)
    assert isinstance(await allocator.try_admit("p", "t", 10, "r2"), Refusal)
    await asyncio.sleep(0.45)
    assert isinstance(await allocator.try_admit("p", "t", 10, "r3"), Grant)
    assert not await allocator.release(grant)  # freed once, by the expiry
    usage = await allocator.usage("p")
    assert usage is not None and usage.tenant("crashed").expired == 1 and usage.in_flight == Amount(1, 10)


async def test_a_renewed_grant_outlives_its_ttl(make_allocator: MakeAllocator) -> None:
    allocator = make_allocator(lease_ttl_s=0.4)
    await allocator.configure("p", pool(1))
    grant = await allocator.try_admit("p", "alive", 10, "r1")
    assert isinstance(grant, Grant)
    for _ in range(4):  # 1.0 s, over twice the ttl
        await asyncio.sleep(0.25)
        assert await allocator.renew([grant]) == 1
    assert isinstance(await allocator.try_admit("p", "t", 10, "r2"), Refusal)
    assert await allocator.release(grant)
    assert await allocator.renew([grant]) == 0  # a released grant stays gone
    assert isinstance(await allocator.try_admit("p", "t", 10, "r3"), Grant)
