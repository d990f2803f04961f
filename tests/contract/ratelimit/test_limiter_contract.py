"""The RateLimiter contract: exact sliding windows, all-or-nothing admission, settlement."""

from __future__ import annotations

import asyncio

from inferlab.ratelimit import Charge, RateLimiter


def rpm(key: str, limit: int, ttl_s: float = 60.0) -> Charge:
    return Charge(key, limit, 1, ttl_s, "requests")


async def test_admits_exactly_the_limit(limiter: RateLimiter) -> None:
    results = [await limiter.acquire(f"l{i}", [rpm("k", 5)]) for i in range(8)]
    assert [r.admitted for r in results] == [True] * 5 + [False] * 3
    assert [r.states[0].remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    refused = results[5]
    assert refused.denied == 0 and 0 < refused.retry_after_s <= 60
    assert 0 < results[0].states[0].reset_s <= 60


async def test_concurrent_admissions_never_exceed_the_limit(limiter: RateLimiter) -> None:
    results = await asyncio.gather(*(limiter.acquire(f"l{i}", [rpm("burst", 37)]) for i in range(200)))
    assert sum(r.admitted for r in results) == 37


async def test_all_or_nothing_across_buckets(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", [rpm("wide", 10), rpm("narrow", 1)])).admitted
    refused = await limiter.acquire("b", [rpm("wide", 10), rpm("narrow", 1)])
    assert not refused.admitted and refused.denied == 1
    assert (await limiter.acquire("c", [rpm("wide", 10)])).states[0].remaining == 8  # b charged nothing


async def test_window_slides(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", [rpm("slide", 1, ttl_s=0.3)])).admitted
    refused = await limiter.acquire("b", [rpm("slide", 1, ttl_s=0.3)])
    assert not refused.admitted and refused.retry_after_s <= 0.3
    await asyncio.sleep(0.35)
    assert (await limiter.acquire("c", [rpm("slide", 1, ttl_s=0.3)])).admitted


async def test_tokens_reserved_then_reconciled(limiter: RateLimiter) -> None:
    tokens = Charge("tpm", 1000, 800, 60.0, "tokens")
    assert (await limiter.acquire("a", [tokens])).admitted
    assert not (await limiter.acquire("b", [Charge("tpm", 1000, 300, 60.0, "tokens")])).admitted
    await limiter.settle("a", [("tpm", 120)])  # the real usage was lower
    admitted = await limiter.acquire("c", [Charge("tpm", 1000, 300, 60.0, "tokens")])
    assert admitted.admitted and admitted.states[0].remaining == 1000 - 120 - 300


async def test_concurrency_lease_released_exactly_once(limiter: RateLimiter) -> None:
    slot = Charge("conc", 2, 1, 600.0, "concurrent")
    assert (await limiter.acquire("a", [slot])).admitted
    assert (await limiter.acquire("b", [slot])).admitted
    assert not (await limiter.acquire("c", [slot])).admitted
    await limiter.settle("a", [("conc", 0)])
    await limiter.settle("a", [("conc", 0)])  # twice: still one slot back, not two
    assert (await limiter.acquire("d", [slot])).admitted
    assert not (await limiter.acquire("e", [slot])).admitted


async def test_a_charge_larger_than_the_limit_is_refused(limiter: RateLimiter) -> None:
    refused = await limiter.acquire("a", [Charge("big", 100, 101, 60.0, "tokens")])
    assert not refused.admitted and refused.retry_after_s == 60.0


async def test_buckets_are_independent(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", [rpm("one", 1)])).admitted
    assert (await limiter.acquire("b", [rpm("two", 1)])).admitted


def slot(key: str, limit: int, ttl_s: float) -> Charge:
    return Charge(key, limit, 1, ttl_s, "concurrent")


async def test_a_lease_nobody_renews_frees_after_its_ttl(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("crashed", [slot("lease", 1, 0.3)])).admitted  # its holder dies here
    assert not (await limiter.acquire("b", [slot("lease", 1, 0.3)])).admitted
    await asyncio.sleep(0.4)
    assert (await limiter.acquire("c", [slot("lease", 1, 0.3)])).admitted


async def test_a_renewed_lease_outlives_its_ttl(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("alive", [slot("renewed", 1, 0.5)])).admitted
    for _ in range(4):  # 1.2 s, over twice the ttl
        await asyncio.sleep(0.3)
        assert await limiter.renew([("alive", "renewed", 0.5)]) == 1
    refused = await limiter.acquire("b", [slot("renewed", 1, 0.5)])
    assert not refused.admitted and 0 < refused.retry_after_s <= 0.5
    await asyncio.sleep(0.6)  # renewals stopped: the lease frees one ttl later
    assert (await limiter.acquire("c", [slot("renewed", 1, 0.5)])).admitted


async def test_renewal_keeps_expiry_order(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", [slot("order", 2, 1.0)])).admitted
    await asyncio.sleep(0.3)
    assert (await limiter.acquire("b", [slot("order", 2, 1.0)])).admitted
    await asyncio.sleep(0.3)
    assert await limiter.renew([("a", "order", 1.0)]) == 1  # a now expires after b
    await asyncio.sleep(0.85)  # b (t=1.3) expired, a (t=1.6) not
    assert (await limiter.acquire("c", [slot("order", 2, 1.0)])).admitted
    assert not (await limiter.acquire("d", [slot("order", 2, 1.0)])).admitted


async def test_renewing_a_released_or_expired_lease_takes_no_slot(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("done", [slot("gone", 1, 0.3)])).admitted
    await limiter.settle("done", [("gone", 0)])
    assert (await limiter.acquire("late", [slot("gone2", 1, 0.3)])).admitted
    await asyncio.sleep(0.4)
    assert await limiter.renew([("done", "gone", 0.3), ("late", "gone2", 0.3), ("never", "nowhere", 0.3)]) == 0
    assert (await limiter.acquire("x", [slot("gone", 1, 0.3)])).admitted
    assert (await limiter.acquire("y", [slot("gone2", 1, 0.3)])).admitted


async def test_one_renewal_call_extends_many_leases_in_many_buckets(limiter: RateLimiter) -> None:
    held = [(f"m{i}", f"many{i % 3}", 1.0) for i in range(300)]
    admitted = await asyncio.gather(*(limiter.acquire(lease, [slot(key, 100, 1.0)]) for lease, key, _ in held))
    assert all(decision.admitted for decision in admitted)
    await asyncio.sleep(0.5)
    assert await limiter.renew(held) == 300
    await asyncio.sleep(0.7)  # past the first ttl
    refused = await limiter.acquire("over", [slot("many0", 100, 1.0)])
    assert not refused.admitted and refused.states[0].remaining == 0


async def test_unsettled_reservations_are_reported(limiter: RateLimiter) -> None:
    def quota(amount: int) -> Charge:
        return Charge("quota", 1000, amount, 60.0, "quota_tokens")

    assert (await limiter.acquire("a", [quota(300)])).states[0].unsettled == 300
    assert (await limiter.acquire("b", [quota(200)])).states[0].unsettled == 500
    await limiter.settle("a", [("quota", 120)])  # a's real usage: settled
    await limiter.settle("a", [("quota", 120)])
    state = (await limiter.acquire("c", [quota(0)])).states[0]
    assert state.remaining == 1000 - 120 - 200 and state.unsettled == 200
    refused = await limiter.acquire("d", [quota(900)])
    assert not refused.admitted and refused.states[0].unsettled == 200
    await limiter.settle("b", [("quota", 0)])
    assert (await limiter.acquire("e", [quota(0)])).states[0].unsettled == 0


async def test_expired_unsettled_charges_leave_the_unsettled_count(limiter: RateLimiter) -> None:
    assert (await limiter.acquire("a", [Charge("short", 10, 4, 0.2, "quota_tokens")])).admitted
    await asyncio.sleep(0.3)
    state = (await limiter.acquire("b", [Charge("short", 10, 1, 0.2, "quota_tokens")])).states[0]
    assert state.unsettled == 1 and state.remaining == 9
