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
