"""Three gateway processes share one Redis pool: random admissions and endings in each, grants
handed between processes and released by whichever gets there first, while this process checks
Redis's state every few milliseconds. And a gateway killed while holding grants: they come back
one lease TTL later, not before."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from inferlab.resources import Amount, Grant, PoolCapacity, PoolConfig, Refusal, TenantShare
from inferlab.resources.redis import RedisAllocator
from inferlab.testing.pytest_plugin import RedisNamespace

pytestmark = pytest.mark.redis

WORKER = Path(__file__).with_name("gateway_worker.py")
SRC = Path(__file__).resolve().parents[3] / "src"
POOL = "shared"
CAPACITY = Amount(12, 2400)
CONFIG = PoolConfig(PoolCapacity(CAPACITY.sequences, CAPACITY.kv_tokens), {
    "gold": TenantShare(Amount(6, 1200)),  # its 6 coroutines never ask for more: never refused
    "silver": TenantShare(limit=Amount(6, 1500)),
    "bronze": TenantShare(Amount(2, 200), Amount(8, 2400)),
}, TenantShare(limit=Amount(3, 800)))  # guests


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _limit(tenant: str) -> Amount:
    return CONFIG.share_of(tenant).limit or CAPACITY


async def test_three_gateways_keep_every_invariant(redis_namespace: RedisNamespace) -> None:
    allocator = RedisAllocator(redis_namespace.client, redis_namespace.prefix)
    await allocator.configure(POOL, CONFIG)
    start_at = time.time() + 1.5  # the three start together, once imported
    workers = [_start("hammer", redis_namespace.url, redis_namespace.prefix, str(seed), str(start_at)) for seed in (1, 2, 3)]
    snapshots, peak = 0, Amount()
    try:
        while any(w.poll() is None for w in workers):
            usage = await allocator.usage(POOL)  # one script: a consistent snapshot
            assert usage is not None
            assert usage.in_flight.fits_in(CAPACITY), usage.in_flight
            assert usage.committed.fits_in(CAPACITY), usage.committed  # guarantees kept while others flood
            for tenant in usage.tenants:
                assert tenant.held.fits_in(_limit(tenant.tenant)), tenant
            peak = peak.at_least(usage.in_flight)
            snapshots += 1
            await asyncio.sleep(0.005)
        outputs = [w.communicate(timeout=30) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    grants = sum(r["grants"] for r in results)
    refused = sum((Counter(r["refused"]) for r in results), Counter())
    assert sum(r["released"] for r in results) == grants  # every grant released exactly once...
    assert sum(r["not_released"] for r in results) > 0  # ...though many were released twice or more
    assert not any(key.startswith("gold:") for key in refused)  # within its guarantee: always admitted
    assert not any(key.endswith(":overbooked") for key in refused)
    assert refused["silver:pool_full"] + refused["bronze:pool_full"] > 0  # the pool was contended
    assert peak.sequences >= CAPACITY.sequences - 1 and snapshots > 20
    usage = await allocator.usage(POOL)
    assert usage is not None and usage.in_flight == Amount() and usage.committed == Amount(8, 1400)
    assert sum(t.admitted for t in usage.tenants) == grants
    assert all(t.grants == 0 and t.expired == 0 for t in usage.tenants)
    assert {f"{t.tenant}:{reason}": n for t in usage.tenants for reason, n in t.refused.items()} == dict(refused)
    print(f"\n3 processes: {grants} grants, {sum(refused.values())} refusals, {snapshots} snapshots, peak {peak}")


async def test_a_killed_gateways_grants_come_back_one_ttl_later(redis_namespace: RedisNamespace) -> None:
    ttl_s = 1.5
    allocator = RedisAllocator(redis_namespace.client, redis_namespace.prefix, lease_ttl_s=ttl_s)
    await allocator.configure(POOL, PoolConfig(PoolCapacity(2, 1000)))
    holder = _start("hold", redis_namespace.url, redis_namespace.prefix, "2", str(ttl_s))
    try:
        assert holder.stdout is not None
        line = await asyncio.to_thread(holder.stdout.readline)
        assert line.strip() == "held", holder.stderr.read() if holder.stderr else ""
        await asyncio.sleep(ttl_s * 1.5)  # renewed while it lives: still held after its TTL
        assert isinstance(await allocator.try_admit(POOL, "t", 10, "early"), Refusal)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed_at = time.monotonic()
        admitted = None
        while admitted is None and time.monotonic() - killed_at < ttl_s * 3:
            decision = await allocator.try_admit(POOL, "t", 10, f"after-{time.monotonic_ns()}")
            admitted = decision if isinstance(decision, Grant) else None
            if admitted is None:
                await allocator.wait_for_capacity(POOL, 0.05)
        freed_after = time.monotonic() - killed_at
        # the last renewal came at most TTL/3 before the kill: freed between 2/3 and 1 TTL later
        assert admitted is not None and ttl_s * 2 / 3 - 0.1 <= freed_after <= ttl_s + 0.5, freed_after
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
        if holder.stderr is not None:
            holder.stderr.close()
    usage = await allocator.usage(POOL)
    assert usage is not None and usage.tenant("doomed").expired == 2 and usage.tenant("doomed").held == Amount()
    await allocator.aclose()
