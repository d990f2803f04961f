"""The in-memory limiter stays bounded: buckets whose charges all expired are forgotten."""

from __future__ import annotations


async def test_memory_limiter_forgets_expired_buckets() -> None:
    from inferlab.ratelimit import Charge, MemoryRateLimiter
    from inferlab.ratelimit.memory import SWEEP_EVERY

    now = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    for i in range(SWEEP_EVERY - 1):
        await limiter.acquire(f"l{i}", [Charge(f"ip:{i}", 10, 1, 1.0)])
    now[0] = 5.0
    await limiter.acquire("last", [Charge("ip:last", 10, 1, 1.0)])
    assert len(limiter._buckets) <= 1  # private state on purpose: the bound is the point of this test
