"""One "gateway" process of the shared-Redis tests, run as a script (``python gateway_worker.py``).

``hammer URL PREFIX SEED START_AT``: random admissions and endings on pool "shared" from
``WORKERS`` coroutines until each has made ``OPS`` attempts, beginning at the wall-clock time
``START_AT`` so that the processes overlap. One grant in five is also handed to the other
processes through a Redis list, and whichever process releases it first wins: both try. Prints one
JSON line: grants, releases that returned True / False, refusals per tenant and reason.

``hold URL PREFIX COUNT TTL_S``: admits COUNT grants, prints "held", and renews them every
TTL/3 until killed.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from inferlab.redisconn import redis_client
from inferlab.resources import Grant, GrantLeases, Refusal
from inferlab.resources.redis import RedisAllocator

POOL = "shared"
WORKERS = 12  # per process: 2 for gold (always within its guarantee), 10 flooding
OPS = 60  # attempts per coroutine
GOLD_KV = 200  # at most, per gold request: 6 gold coroutines x 200 = gold's KV guarantee


class Tally:
    def __init__(self) -> None:
        self.grants = 0
        self.released = 0
        self.not_released = 0
        self.refused: Counter[str] = Counter()

    def ended(self, results: list[bool]) -> None:
        self.released += sum(results)
        self.not_released += len(results) - sum(results)


async def worker(allocator: RedisAllocator, client: Any, handoff: str, tally: Tally, rng: random.Random,
                 gold: bool, name: str) -> None:
    for op in range(OPS):
        tenant = "gold" if gold else rng.choice(["silver", "silver", "bronze", "bronze", "guest"])
        kv = rng.randint(1, GOLD_KV) if gold else rng.randint(1, 400)
        result = await allocator.try_admit(POOL, tenant, kv - 1 if kv > 1 else 0, f"{name}-{op}")
        if isinstance(result, Refusal):
            tally.refused[f"{tenant}:{result.reason}"] += 1
            if result.can_wait and rng.random() < 0.3:
                await allocator.wait_for_capacity(POOL, 0.05)
            continue
        tally.grants += 1
        await asyncio.sleep(rng.random() * 0.004)
        ending = rng.choice(["completion", "failure", "disconnect", "handoff", "handoff"])
        if ending == "completion":
            tally.ended([await allocator.release(result)])
        elif ending == "failure":
            tally.ended([await allocator.release(result), await allocator.release(result)])
        elif ending == "disconnect":
            tally.ended(list(await asyncio.gather(allocator.release(result), allocator.release(result))))
        else:  # another gateway may release it first (a timeout seen there): one of the two wins
            await client.lpush(handoff, json.dumps([result.tenant, result.request_id, result.amount.kv_tokens,
                                                    result.borrowed.sequences, result.borrowed.kv_tokens, result.token]))
            await asyncio.sleep(rng.random() * 0.004)
            tally.ended([await allocator.release(result)])


async def janitor(allocator: RedisAllocator, client: Any, handoff: str, tally: Tally, done: asyncio.Event) -> None:
    from inferlab.resources import Amount

    while not done.is_set() or await client.llen(handoff):
        raw = await client.rpop(handoff)
        if raw is None:
            await asyncio.sleep(0.002)
            continue
        tenant, request_id, kv, bs, bk, token = json.loads(raw)
        grant = Grant(POOL, tenant, request_id, Amount(1, kv), Amount(bs, bk), token)
        tally.ended([await allocator.release(grant)])


async def hammer(url: str, prefix: str, seed: int, start_at: float) -> dict[str, Any]:
    client = redis_client(url, timeout_s=10.0, max_connections=64)
    allocator = RedisAllocator(client, prefix, lease_ttl_s=120.0)
    tally, rng, done = Tally(), random.Random(seed), asyncio.Event()
    handoff = prefix + "handoff"
    await asyncio.sleep(max(0.0, start_at - time.time()))
    janitor_task = asyncio.create_task(janitor(allocator, client, handoff, tally, done))
    await asyncio.gather(*(
        worker(allocator, client, handoff, tally, random.Random(rng.random()), i < 2, f"{seed}-{i}")
        for i in range(WORKERS)
    ))
    done.set()
    await janitor_task
    await allocator.aclose()
    await client.aclose()
    return {"grants": tally.grants, "released": tally.released, "not_released": tally.not_released,
            "refused": dict(tally.refused)}


async def hold(url: str, prefix: str, count: int, ttl_s: float) -> None:
    client = redis_client(url, timeout_s=5.0, max_connections=4)
    leases = GrantLeases(RedisAllocator(client, prefix, lease_ttl_s=ttl_s))
    for i in range(count):
        assert isinstance(await leases.admit(POOL, "doomed", 10, f"held-{i}"), Grant)
    print("held", flush=True)
    await leases.keep(ttl_s / 3)


def main(argv: list[str]) -> None:
    if argv[0] == "hammer":
        print(json.dumps(asyncio.run(hammer(argv[1], argv[2], int(argv[3]), float(argv[4])))), flush=True)
    else:
        asyncio.run(hold(argv[1], argv[2], int(argv[3]), float(argv[4])))


if __name__ == "__main__":
    main(sys.argv[1:])
