"""Autoscaling: the decision loop's cost, its reaction time, and scale-from-zero with the real engine.

1. decision cost — µs per pool decision: ``ScaleDecider.decide`` alone, and the whole per-pool tick
   minus the actuator (``PoolSignals.read`` over a pool of 8 replicas with engine load, then decide);
2. reaction time — on the accelerated replica model (``inferlab.testing.autoscale_sim``): after a
   step from 2 to 20 requests/s, simulated seconds until the first scale-up decision and until the
   count covers the new load, with the panic window and without it;
3. scale from zero, real llama-server + SmolLM2-135M: the engine's start broken down (process
   start: spawn → its port accepts connections; model load: → /health answers 200; first token:
   → the first streamed token of a request), then the whole path through the gateway (a pool at
   zero, the openai SDK streaming: request → first token), ``--cold N`` times.

    python bench/autoscale.py [--decisions 200000] [--cold 10] [--skip-engine]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from inferlab.autoscale.decision import Sample, ScaleDecider, ScalePolicy
from inferlab.autoscale.signals import PoolSignals
from inferlab.router import BackendPool, Replica
from inferlab.router.load import EngineLoad
from inferlab.testing.autoscale_sim import ReplicaModel, arrivals, simulate


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Backend:
    """A replica's backend for the cost measurement (the tick reads only in-memory state)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def is_available(self) -> bool:
        return True


def decision_cost(decisions: int) -> dict[str, float]:
    rng = random.Random(3)
    policy = ScalePolicy(target=4, min_replicas=0, max_replicas=64)
    decider = ScaleDecider(policy)
    samples = [Sample(i * 0.5, rng.uniform(0, 60), rng.randrange(1, 16), last_request_at=i * 0.5)
               for i in range(decisions)]
    started = time.perf_counter()
    for sample in samples:
        decider.decide(sample)
    decide_us = (time.perf_counter() - started) / decisions * 1e6
    replicas = [Replica(Backend(f"r{i}"), limit=8) for i in range(8)]  # type: ignore[arg-type]
    for replica in replicas:
        replica.in_flight = rng.randrange(0, 8)
        replica.load = EngineLoad(running=rng.randrange(0, 8), waiting=rng.randrange(0, 4), kv_cache=0.4,
                                  scraped_at=1.0)
        replica.ewma_s = 0.2
    pool = BackendPool("m", replicas)
    signals = PoolSignals(pool, lambda: 5, ttft_slo_s=0.5)
    decider = ScaleDecider(policy)
    clock = 0.0
    started = time.perf_counter()
    for _ in range(decisions):
        reading = signals.read()
        clock += 0.5
        decider.decide(Sample(clock, reading.load, 8, reading.pressure, clock, None, reading.signals))
    tick_us = (time.perf_counter() - started) / decisions * 1e6
    return {"decide_us": decide_us, "tick_us": tick_us}


def reaction() -> dict[str, Any]:
    model = ReplicaModel()
    duration = 600.0

    def step(t: float) -> float:
        return 2.0 if t < 300 else 20.0

    times = arrivals(step, duration, 9)
    need = 20 * model.service_s / model.slots  # replicas the new load needs, without headroom
    found: dict[str, Any] = {}
    for name, threshold in (("panic", 2.0), ("no panic", 1e9)):
        policy = ScalePolicy(target=model.slots, min_replicas=1, max_replicas=50, panic_threshold=threshold)
        result = simulate(times, policy, model, duration)
        ticks = result.counts[300:]
        before = result.counts[299]
        first_up = next(i for i, count in enumerate(ticks) if count > before)
        covered = next(i for i, count in enumerate(ticks) if count >= need)
        found[name] = {"first_up_s": first_up * model.tick_s, "covered_s": covered * model.tick_s,
                       "ready_s": covered * model.tick_s + model.startup_s, "attainment": result.attainment}
    return found


def first_content(data: bytes) -> bool:
    choices = json.loads(data).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


async def engine_breakdown(runs: int) -> list[dict[str, float]]:
    """The engine alone: spawn → port open → /health 200 → first streamed token."""
    import socket

    import aiohttp

    from inferlab.config import EngineSettings, ModelConfig
    from inferlab.coordinator.engine_process import free_port
    from inferlab.coordinator.locate import llama_engine_command

    model = ModelConfig(name="smollm2-135m", backend="llamacpp", path="embedded:smollm2", context_size=1024,
                        parallel=1, embeddings=False)
    found = []
    async with aiohttp.ClientSession() as session:
        for _ in range(runs):
            port = free_port()
            command = llama_engine_command(model, EngineSettings(prefer="llama-server"), port)
            auth = {"Authorization": f"Bearer {command.api_key}"}
            t0 = time.perf_counter()
            process = await asyncio.create_subprocess_exec(*command.argv, stdout=asyncio.subprocess.DEVNULL,
                                                           stderr=asyncio.subprocess.DEVNULL,
                                                           env={**os.environ, **dict(command.env)})
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                        break
                except OSError:
                    await asyncio.sleep(0.005)
            t_port = time.perf_counter()
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}{command.health_path}", headers=auth) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.005)
            t_ready = time.perf_counter()
            body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True}
            async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=auth) as r:
                async for line in r.content:
                    if line.startswith(b"data: {") and first_content(line[6:]):
                        break
            t_token = time.perf_counter()
            process.terminate()
            await process.wait()
            found.append({"process_start_s": t_port - t0, "model_load_s": t_ready - t_port,
                          "first_token_s": t_token - t_ready, "total_s": t_token - t0})
    return found


def gateway_cold_starts(runs: int) -> list[dict[str, float]]:
    """Through the gateway: a pool at zero, a streamed request, its first token and its end."""
    import httpx2 as httpx
    import openai

    from inferlab.testing.gateway_process import GatewayProcess
    from tests.conftest import smollm2_config

    config = smollm2_config(parallel=1, context_size=1024, embeddings=False)
    config["autoscale"] = {"enabled": True, "interval_s": 0.2, "pools": {"smollm2-135m": {
        "min_replicas": 0, "max_replicas": 1, "target": 2, "stable_window_s": 2, "panic_window_s": 0.5,
        "scale_down_delay_s": 0.2, "idle_s": 0.6}}}
    gateway = GatewayProcess(config).start(wait_ready=False)  # its engine may go to zero before it is seen ready
    found = []
    try:
        with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=60) as client:
            for _ in range(runs):
                while True:
                    try:
                        state = httpx.get(gateway.url + "/admin/autoscaler").json()["data"][0]
                    except httpx.TransportError:  # not listening yet
                        state = {"current": None}
                    if state["current"] == 0 and not state["draining"]:
                        break
                    time.sleep(0.05)
                t0 = time.perf_counter()
                stream = client.chat.completions.create(model="smollm2-135m", stream=True, max_tokens=4,
                                                        messages=[{"role": "user", "content": "hi"}])
                first = None
                for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter()
                done = time.perf_counter()
                state = httpx.get(gateway.url + "/admin/autoscaler").json()["data"][0]
                found.append({"held_s": state["cold_starts_s"][-1], "engine_ready_s": state["recent_starts"][-1]["ready_s"],
                              "first_token_s": (first or done) - t0, "done_s": done - t0})
    finally:
        gateway.stop()
    return found


def summary(rows: list[dict[str, float]]) -> dict[str, str]:
    return {key: f"p50 {statistics.median([r[key] for r in rows]) * 1000:.0f} ms, "
                 f"max {max(r[key] for r in rows) * 1000:.0f} ms" for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    cost = decision_cost(args.decisions)
    print(f"decision cost: decide {cost['decide_us']:.2f} µs; signals (8 replicas) + decide {cost['tick_us']:.2f} µs "
          f"per pool decision ({args.decisions} decisions)")
    print("reaction to a step 2 → 20 requests/s (simulated seconds):", json.dumps(reaction(), indent=None))
    if args.skip_engine:
        return
    rows = asyncio.run(engine_breakdown(args.cold))
    print("engine start, llama-server + SmolLM2-135M:", json.dumps(summary(rows)))
    cold = gateway_cold_starts(args.cold)
    print("through the gateway from zero:", json.dumps(summary(cold)))
    print("held in the queue ≤ engine ready + 1 s:", all(r["held_s"] <= r["engine_ready_s"] + 1.0 for r in cold))
    print("each:", json.dumps([{k: round(v, 3) for k, v in r.items()} for r in cold]))


if __name__ == "__main__":
    main()
