"""Rate-limit check cost (memory and Redis) and cross-replica accuracy.

1. One admission check (``acquire`` of a key's rpm + tpm + concurrency buckets, the usual shape)
   and its settlement, p50/p99, against the in-memory limiter and the Redis one (one Lua call).
2. Accuracy: three real ``inferlab serve`` processes sharing one Redis, 1,000 concurrent requests
   on one key limited to 100 a minute, repeated ``--runs`` times: admitted must be exactly 100.

3. Cache hit end to end: a real ``inferlab serve`` process (cache on, memory or Redis), a warm
   entry, then sequential identical ``temperature: 0`` requests from one kept-alive client; the time
   from sending the request to the last byte of the answer, p50/p99.

    python bench/ratelimit_cache.py [--redis redis://127.0.0.1:6379/0] [--iterations 20000] [--runs 20]
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
sys.path.insert(0, str(ROOT / "tests" / "integration" / "ratelimit"))

from inferlab.ratelimit import Charge, MemoryRateLimiter, RateLimiter


def charges(i: int) -> list[Charge]:
    key = f"k{i % 64}"
    return [
        Charge(f"r:{key}", 10**9, 1, 60.0, "requests"),
        Charge(f"t:{key}", 10**12, 500, 60.0, "tokens"),
        Charge(f"c:{key}", 10**6, 1, 900.0, "concurrent"),
    ]


async def time_checks(limiter: RateLimiter, iterations: int) -> tuple[list[float], list[float]]:
    acquire: list[float] = []
    settle: list[float] = []
    for i in range(iterations):
        batch = charges(i)
        lease = f"l{i}"
        started = time.perf_counter()
        await limiter.acquire(lease, batch)
        acquire.append(time.perf_counter() - started)
        started = time.perf_counter()
        await limiter.settle(lease, [(batch[1].key, 420), (batch[2].key, 0)])
        settle.append(time.perf_counter() - started)
    return acquire, settle


def summary(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = statistics.median(samples) * 1e3
    p99 = samples[int(len(samples) * 0.99)] * 1e3
    return f"{name:<28} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   (n={len(samples)})"


async def accuracy(redis_url: str, runs: int) -> list[int]:
    from harness import burst, gateway_config, start_all, stop_all  # tests/integration/ratelimit

    from inferlab.testing import EngineSimulator, SimulatorScript
    from inferlab.testing.gateway_process import GatewayProcess

    sim = EngineSimulator(SimulatorScript(completion_tokens=2))
    await sim.start()
    config = gateway_config(sim, redis_url, [{"scope": "key", "rpm": 100}], redis_timeout_s=5.0)
    gateways = [GatewayProcess(config) for _ in range(3)]
    admitted: list[int] = []
    try:
        await start_all(gateways)
        for run in range(runs):
            statuses = await burst([g.url for g in gateways], f"198.18.{run // 250}.{run % 250 + 1}", 1000)
            admitted.append(statuses.count(200))
    finally:
        await stop_all(gateways)
        await sim.stop()
    return admitted


async def cache_hits(redis_url: str, backend: str, iterations: int) -> list[float]:
    import aiohttp

    from inferlab.testing import EngineSimulator, SimulatorScript
    from inferlab.testing.gateway_process import GatewayProcess

    sim = EngineSimulator(SimulatorScript(completion_tokens=32))
    await sim.start()
    config = {
        "features": {"cache": True}, "redis_url": redis_url,
        "cache": {"backend": backend, "redis_prefix": f"bench:{uuid.uuid4().hex}:"},
        "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
        "logging": {"level": "WARNING"},
    }
    gateway = GatewayProcess(config)
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "what is 2+2"}], "max_tokens": 32,
            "temperature": 0}
    samples: list[float] = []
    try:
        await asyncio.to_thread(gateway.start)
        async with aiohttp.ClientSession() as session:
            url = gateway.url + "/v1/chat/completions"
            for i in range(iterations + 50):
                started = time.perf_counter()
                async with session.post(url, json=body) as response:
                    await response.read()
                    hit = response.headers.get("x-inferlab-cache") == "hit"
                if i >= 50:  # warm-up (the first is the miss that fills the entry)
                    assert hit, "expected a cache hit"
                    samples.append(time.perf_counter() - started)
    finally:
        await asyncio.to_thread(gateway.stop)
        await sim.stop()
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    memory = MemoryRateLimiter()
    acquire, settle = await time_checks(memory, args.iterations)
    print(summary("memory  acquire (3 buckets)", acquire))
    print(summary("memory  settle", settle))

    from inferlab.ratelimit.redis import RedisRateLimiter
    from inferlab.redisconn import redis_client

    prefix = f"bench:{uuid.uuid4().hex}:"
    client = redis_client(args.redis, timeout_s=1.0)
    redis = RedisRateLimiter(client, prefix)
    try:
        acquire, settle = await time_checks(redis, args.iterations // 4)
        print(summary("redis   acquire (3 buckets)", acquire))
        print(summary("redis   settle", settle))
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await redis.aclose()

    for backend in ("memory", "redis"):
        samples = await cache_hits(args.redis, backend, args.iterations // 10)
        print(summary(f"cache hit e2e ({backend})", samples))
    admitted = await accuracy(args.redis, args.runs)
    verdict = "exact" if all(a == 100 for a in admitted) else "NOT EXACT"
    print(f"accuracy: 3 gateways, 1,000 concurrent, limit 100/min, {args.runs} runs -> admitted {admitted} ({verdict})")


if __name__ == "__main__":
    asyncio.run(main())
