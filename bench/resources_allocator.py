"""Resource-allocator cost: one admission (``try_admit``) and its release, memory and Redis.

A pool of 1,024 sequences shared by 64 tenants, 16 of them with a guarantee: each iteration admits
one request of a rotating tenant (one Lua call on Redis) and releases it (one more), p50/p99.
Then ``--concurrency`` coroutines of one process admit and release as fast as they can for
``--seconds`` against Redis: the operations a second one gateway process gets through.

    python bench/resources_allocator.py [--redis redis://127.0.0.1:6379/0] [--iterations 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.resources import (
    Amount,
    Grant,
    MemoryAllocator,
    PoolCapacity,
    PoolConfig,
    ResourceAllocator,
    TenantShare,
)

CONFIG = PoolConfig(PoolCapacity(1024, 4_000_000),
                    {f"t{i}": TenantShare(Amount(16, 64_000), Amount(128, 512_000)) for i in range(16)})


async def time_admissions(allocator: ResourceAllocator, iterations: int) -> tuple[list[float], list[float]]:
    await allocator.configure("bench", CONFIG)
    admit: list[float] = []
    release: list[float] = []
    for i in range(iterations):
        started = time.perf_counter()
        grant = await allocator.try_admit("bench", f"t{i % 64}", 1500, f"r{i}")
        admit.append(time.perf_counter() - started)
        assert isinstance(grant, Grant)
        started = time.perf_counter()
        await allocator.release(grant)
        release.append(time.perf_counter() - started)
    return admit, release


async def throughput(allocator: ResourceAllocator, concurrency: int, seconds: float) -> float:
    await allocator.configure("bench", CONFIG)
    deadline = time.perf_counter() + seconds
    done = 0

    async def loop(worker: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            grant = await allocator.try_admit("bench", f"t{worker % 64}", 1500, f"w{worker}-{n}")
            if isinstance(grant, Grant):
                await allocator.release(grant)
            n += 1
            done += 1

    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    return done / seconds


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    return (f"{name:<30} p50 {statistics.median(ordered) * 1e3:7.3f} ms   p99 {ordered[int(len(ordered) * 0.99)] * 1e3:7.3f} ms"
            f"   (n={len(ordered)})")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    admit, release = await time_admissions(MemoryAllocator(), args.iterations)
    print(summary("admit, memory", admit))
    print(summary("release, memory", release))

    from inferlab.redisconn import redis_client
    from inferlab.resources.redis import RedisAllocator

    client = redis_client(args.redis, timeout_s=5.0, max_connections=args.concurrency + 4)
    prefix = f"bench:{uuid.uuid4().hex}:"
    try:
        pings = []
        for _ in range(args.iterations):
            started = time.perf_counter()
            await client.ping()
            pings.append(time.perf_counter() - started)
        print(summary("Redis PING (the round-trip)", pings))
        allocator = RedisAllocator(client, prefix)
        admit, release = await time_admissions(allocator, args.iterations)
        print(summary("admit, Redis (one Lua call)", admit))
        print(summary("release, Redis (one Lua call)", release))
        rate = await throughput(allocator, args.concurrency, args.seconds)
        print(f"Redis, {args.concurrency} coroutines, one process: {rate:,.0f} admit+release pairs/s")
        await allocator.aclose()
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
