"""Fair share across two gateway replicas: counters merged through Redis against local ones.

One engine (the simulator: 8 sequences at once, 16 tokens 10 ms apart) behind two ``inferlab serve``
processes that each send it at most 4 (``max_concurrency_per_replica``); one SQLite store for both.
Tenant A (weight 3) and tenant B (weight 1), one class, closed-loop clients:

    A: 4 clients on gateway 1, 4 on gateway 2        B: 8 clients on gateway 2 only

Gateway 1 only ever sees A, so it gives A its 4 slots whatever the counters say. With local
counters gateway 2 splits its 4 slots 3:1 between A and B as if alone — A gets 7 of the 8 slots.
With counters merged through Redis gateway 2 sees what A got on gateway 1 and serves B until the
totals are 3:1 — the weights hold across replicas. Reported: A's and B's served tokens over the
window and their ratio, for both, next to the target 3.0.

    python bench/scheduling_replicas.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.services import build_admin_services
from inferlab.testing.gateway_process import GatewayProcess, free_port, http_get

MODEL = "bench-model"
REDIS = os.environ.get("INFERLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def config(engine_url: str, database: str, shared: bool) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "database_url": database,
        "features": {"auth": True},
        "auth": {"pepper": "bench-pepper-0123456789abcdef", "bootstrap": False},
        "tenants": {"tiers": [{"name": "gold", "priority": "normal", "weight": 3},
                              {"name": "silver", "priority": "normal", "weight": 1}]},
        "models": [{"name": MODEL, "backend": "openai", "url": engine_url + "/v1", "engine": "vllm",
                    "max_concurrency_per_replica": 4, "queue": {"policy": "tiered", "max_wait_s": 60}}],
        "logging": {"level": "WARNING"},
        "scheduler": {"shared_counters": "redis" if shared else "local", "sync_interval_s": 0.2,
                      "redis_prefix": f"bench:{uuid.uuid4().hex}:"},
    }
    if shared:
        raw["redis_url"] = REDIS
    return raw


async def make_keys(raw: dict[str, Any]) -> dict[str, str]:
    admin = build_admin_services(Settings(**raw))
    keys = {}
    async with admin.auth.running():
        for tenant, tier in (("a", "gold"), ("b", "silver")):
            await admin.tenant_admin.create(LOCAL_OPERATOR, tenant, tier=tier)
            user = await admin.auth.admin.create_user(LOCAL_OPERATOR, f"u-{tenant}", "member", tenant)
            created = await admin.auth.admin.create_key(LOCAL_OPERATOR, name="bench", user_id=user.id,
                                                        scopes=Scopes(frozenset({"inference"})))
            keys[tenant] = created.token
    return keys


async def client(session: aiohttp.ClientSession, url: str, key: str, tenant: str, stop: float,
                 done: list[tuple[float, str, int]]) -> None:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "word " * 20}]}
    while time.perf_counter() < stop:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
            payload = await response.json()
            if response.status == 200:
                done.append((time.perf_counter(), tenant, int(payload["usage"]["total_tokens"])))
            else:
                await asyncio.sleep(0.05)


async def run(engine_url: str, shared: bool, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        raw = config(engine_url, f"sqlite+aiosqlite:///{folder}/shared.db", shared)
        keys = await make_keys(raw)
        gateways = [GatewayProcess(raw, env={"PYTHONPATH": str(ROOT / "src")}) for _ in range(2)]
        for gateway in gateways:
            await asyncio.to_thread(gateway.start, timeout=120)
        try:
            urls = [g.url + "/v1/chat/completions" for g in gateways]
            done: list[tuple[float, str, int]] = []
            started = time.perf_counter()
            stop = started + seconds
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                plan = [(urls[0], "a")] * 4 + [(urls[1], "a")] * 4 + [(urls[1], "b")] * 8
                await asyncio.gather(*(client(session, url, keys[t], t, stop, done) for url, t in plan))
        finally:
            for gateway in gateways:
                await asyncio.to_thread(gateway.stop)
    warm = started + seconds * 0.2
    tokens = {"a": 0, "b": 0}
    for at, tenant, total in done:
        if warm <= at <= stop:
            tokens[tenant] += total
    return {"counters": "redis" if shared else "local", "a_tokens": tokens["a"], "b_tokens": tokens["b"],
            "ratio_a_to_b": tokens["a"] / tokens["b"] if tokens["b"] else None}


def start_engine() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "inferlab.testing.simulator", "--port", str(port), "--model", MODEL, "--tokens", "16",
         "--token-delay-ms", "10", "--max-concurrency", "8"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if http_get(url + "/health", timeout=1)[0] == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("simulator not ready")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    process, url = start_engine()
    try:
        results = [await run(url, shared, args.seconds) for shared in (False, True)]
    finally:
        process.terminate()
        process.wait(30)
    report = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "target_ratio": 3.0,
              "ideal_without_sharing": 7.0, "results": results,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"}
    out = ROOT / "bench" / "results" / f"scheduling-replicas-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    for result in results:
        print(f"{result['counters']:>6} counters: A {result['a_tokens']} tokens, B {result['b_tokens']} tokens, "
              f"A:B = {result['ratio_a_to_b']:.2f} (weights 3:1)")
    print(f"written {out}")


if __name__ == "__main__":
    asyncio.run(main())
