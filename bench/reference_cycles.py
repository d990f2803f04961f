"""What a request leaves for Python's garbage collector, and what the collector costs under load.

Runs the gateway app of the tree this script is in, in this process, in front of the engine
simulator, and sends it ``--requests`` streamed chat requests at ``--concurrency`` (the load
generator shares the process, as the simulator does). Before the load, everything built so far is
frozen out of the collector's walks, as ``inferlab serve`` does. It reports:

- the collections during the load, per generation, their total time and the longest pause
  (``gc.callbacks``) — the load generator's own allocations count towards them too;
- the gateway's objects in reference cycles after the load — those the collections during it had
  not freed yet: one collection keeping what it finds (``gc.DEBUG_SAVEALL``), counted by type
  (InferLab's own, aiohttp's requests and responses).

To compare with an earlier tree, run this file inside a worktree of it (its ``src`` comes first):

    python bench/reference_cycles.py --requests 2000 --features off
    git worktree add /tmp/old 95c9ef5 && cp bench/reference_cycles.py /tmp/old/bench/ \\
        && python /tmp/old/bench/reference_cycles.py --requests 2000 --features off
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
FEATURES: dict[str, dict[str, bool]] = {
    "off": {"metering": False, "slo": False},  # every optional step off
    "default": {},  # as shipped: usage metering and SLO tracking on
    "on": {"ratelimit": True, "cache": True},  # limits and the response cache on top
}


class Pauses:
    """The collector's collections and their durations, per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)


def _the_gateways(thing: object) -> bool:
    kind = type(thing)
    return kind.__module__.startswith("inferlab.") or issubclass(kind, (web.BaseRequest, web.StreamResponse))


async def measure(features: str, requests: int, concurrency: int) -> dict[str, Any]:
    sim = EngineSimulator(SimulatorScript(completion_tokens=16, token_delay_s=0.005), model=MODEL)
    await sim.start()
    with tempfile.TemporaryDirectory(prefix="cycles-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), features=FEATURES[features],
                            ratelimit={"limits": [{"scope": "key", "rpm": 10**9}]},
                            models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}])
        server = TestServer(await create_app(settings))
        await server.start_server()
        config = BenchmarkConfig(base_url=str(server.make_url("/v1")), model=MODEL, num_prompts=requests,
                                 concurrency=concurrency, stream=True, max_tokens=16, temperature=0.0,
                                 warmup=concurrency * 2, percentiles=(50.0, 99.0), seed=1)
        pauses = Pauses()
        try:
            await run_benchmark(replace(config, num_prompts=concurrency * 2, seed=2))  # lazily built things first
            gc.collect()
            gc.freeze()
            gc.callbacks.append(pauses)
            result = await run_benchmark(config)
            gc.callbacks.remove(pauses)
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = Counter(type(thing).__qualname__ for thing in gc.garbage if _the_gateways(thing))
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
            gc.unfreeze()
            await server.close()
            await sim.stop()
    served = requests + config.warmup
    return {
        "features": features, "requests": served, "completed": result.completed,
        "collections": pauses.count, "collector_ms": [round(s * 1000, 1) for s in pauses.seconds],
        "collector_us_per_request": round(sum(pauses.seconds) * 1e6 / served, 1),
        "longest_pause_ms": round(pauses.longest * 1000, 2),
        "left_in_cycles": sum(left.values()),
        "left_by_type": dict(left.most_common(8)),
        "p99_ttft_ms": round(result.to_dict()["p99_ttft_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--features", default="off,default,on", help="comma-separated: off, default, on")
    args = parser.parse_args()
    for features in args.features.split(","):
        report = asyncio.run(measure(features, args.requests, args.concurrency))
        print(" ".join(f"{key}={value}" for key, value in report.items()), flush=True)


if __name__ == "__main__":
    main()
