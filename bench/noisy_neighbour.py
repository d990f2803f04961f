"""Noisy neighbour: one pool, tenant A guaranteed half of its sequences, tenant B flooding it.

The engine simulator (a scriptable OpenAI-compatible server, not a real engine) answers every
request in ``--tokens`` chunks ``--token-delay-ms`` apart; the pool has ``--capacity`` slots
(``max_concurrency_per_replica``). Three gateways are run one after another, each a real
``inferlab serve`` process with auth on:

  alone       A only (allocator on)                      → A's TTFT baseline
  flood+alloc A and B, the allocator on (A guaranteed capacity/2, B may borrow the rest)
  flood-alloc A and B, the allocator off (the pool's FIFO queue only)

A runs closed-loop at the concurrency of its guarantee; B at 4× the pool's capacity, from a
process of its own (so B's clients do not delay the measurement of A's TTFT). Reported:
A's TTFT p50/p95 and refusals, B's completed requests, and the pool's utilisation (replica slots
in use, sampled every 50 ms from /admin/backends).

    python bench/noisy_neighbour.py [--seconds 20] [--capacity 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.services import build_admin_services

MODEL = "sim-model"


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tally:
    ttft: list[float] = field(default_factory=list)
    ok: int = 0
    refused: int = 0
    errors: int = 0


async def client(session: aiohttp.ClientSession, url: str, key: str, tally: Tally, stop: float) -> None:
    body = {"model": MODEL, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            async with session.post(url, json=body, headers=headers) as response:
                if response.status in (429, 503):
                    tally.refused += 1
                    await response.read()
                    await asyncio.sleep(0.05)
                    continue
                if response.status != 200:
                    tally.errors += 1
                    await response.read()
                    continue
                first = None
                async for line in response.content:
                    if first is None and line.startswith(b"data: {"):
                        first = time.perf_counter() - started
                if first is not None:
                    tally.ttft.append(first)
                tally.ok += 1
        except aiohttp.ClientError:
            tally.errors += 1


async def sample_utilisation(session: aiohttp.ClientSession, base: str, key: str, capacity: int,
                             stop: float, into: list[float]) -> None:
    while time.monotonic() < stop:
        async with session.get(base + "/admin/backends", headers={"Authorization": f"Bearer {key}"}) as response:
            pools = (await response.json())["data"]
        used = sum(r["in_flight"] for pool in pools if pool["role"] == "generate" for r in pool["replicas"])
        into.append(used / capacity)
        await asyncio.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def prepare(settings: Settings, capacity: int) -> dict[str, str]:
    """Tenants a (guaranteed capacity/2) and b, a key each, and a platform admin's key."""
    admin = build_admin_services(settings)
    keys: dict[str, str] = {}
    async with admin.auth.running():
        manager = admin.tenant_admin
        await manager.create(LOCAL_OPERATOR, "a", overrides={"resources": {"guarantee_sequences": capacity // 2}})
        await manager.create(LOCAL_OPERATOR, "b")
        for tenant, role, groups in (("a", "member", {"inference"}), ("b", "member", {"inference"}),
                                     ("default", "platform-admin", {"inference", "admin"})):
            user = await admin.auth.admin.create_user(LOCAL_OPERATOR, f"bench-{tenant}", role, tenant)  # type: ignore[arg-type]
            created = await admin.auth.admin.create_key(LOCAL_OPERATOR, name="bench", user_id=user.id,
                                                        scopes=Scopes(frozenset(groups)))
            keys[tenant] = created.token
    return keys


async def run(name: str, *, allocator: bool, flood: bool, args: argparse.Namespace, sim_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        raw = {
            "data_dir": data_dir,
            "features": {"auth": True, "resources": allocator, "metrics": True},
            "auth": {"pepper": "bench-pepper-0123456789abcdef", "bootstrap": False},
            "models": [{"name": MODEL, "backend": "openai", "url": sim_url + "/v1",
                        "max_concurrency_per_replica": args.capacity}],
            "resources": {"pools": {MODEL: {"sequences": args.capacity, "kv_tokens": 10**7}},
                          "queue_timeout_s": 120, "refresh_s": 5},
            "logging": {"level": "WARNING"},
        }
        config = Path(data_dir) / "config.yaml"
        config.write_text(yaml.safe_dump(raw))
        keys = await prepare(Settings(**raw), args.capacity)
        proc = spawn([sys.executable, "-m", "inferlab", "serve", "--config", str(config),
                      "--host", "127.0.0.1", "--port", str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                for _ in range(200):
                    try:
                        async with session.get(base + "/health") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                stop = time.monotonic() + args.seconds
                a, b, utilisation = Tally(), Tally(), []
                url = base + "/v1/chat/completions"
                tasks = [client(session, url, keys["a"], a, stop) for _ in range(args.capacity // 2)]
                flooder = None
                if flood:
                    clients = str(int(args.flood_factor * args.capacity))
                    flooder = await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--flood", url, keys["b"], clients, str(args.seconds),
                        stdout=asyncio.subprocess.PIPE)
                tasks.append(sample_utilisation(session, base, keys["default"], args.capacity, stop, utilisation))
                await asyncio.gather(*tasks)
                if flooder is not None:
                    out, _ = await flooder.communicate()
                    b = Tally(**json.loads(out))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    steady = utilisation[len(utilisation) // 10:]  # the first 10 %: ramp-up
    return {
        "run": name, "a_ttft_p50_ms": percentile(a.ttft, 50) * 1000, "a_ttft_p95_ms": percentile(a.ttft, 95) * 1000,
        "a_ok": a.ok, "a_refused": a.refused, "a_errors": a.errors, "b_ok": b.ok, "b_refused": b.refused,
        "b_errors": b.errors, "utilisation_mean": statistics.fmean(steady) if steady else 0.0,
    }


async def flood(url: str, key: str, clients: int, seconds: float) -> None:
    """The flooding tenant's clients, in their own process; its tally as JSON on stdout."""
    tally = Tally()
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session, url, key, tally, stop) for _ in range(clients)))
    print(json.dumps({"ok": tally.ok, "refused": tally.refused, "errors": tally.errors}))


async def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--flood":
        await flood(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--flood-factor", type=float, default=4.0, help="B's clients per pool slot")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--token-delay-ms", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    sim_port = free_port()
    sim = spawn([sys.executable, "-m", "inferlab.testing.simulator", "--port", str(sim_port), "--model",
                 MODEL, "--tokens", str(args.tokens), "--token-delay-ms", str(args.token_delay_ms)])
    try:
        await asyncio.sleep(2)
        sim_url = f"http://127.0.0.1:{sim_port}"
        results = [
            await run("A alone (allocator on)", allocator=True, flood=False, args=args, sim_url=sim_url),
            await run("A + B flood, allocator on", allocator=True, flood=True, args=args, sim_url=sim_url),
            await run("A + B flood, allocator off", allocator=False, flood=True, args=args, sim_url=sim_url),
        ]
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print("| run | A TTFT p50 ms | A TTFT p95 ms | A ok / refused | B ok / refused | pool utilisation |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['run']} | {r['a_ttft_p50_ms']:.1f} | {r['a_ttft_p95_ms']:.1f} | {r['a_ok']} / {r['a_refused']} | "
              f"{r['b_ok']} / {r['b_refused']} | {r['utilisation_mean']:.0%} |")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"noisy-neighbour-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "args": vars(args) | {
        "out": str(args.out)}, "results": results}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
