"""``inferlab serve --workers N``: requests per second at 1 and 2 workers, side by side.

Starts the engine simulator (16 tokens, no delay: the gateway is the bottleneck), then for each
worker count an ``inferlab serve`` in front of it (laptop profile, metering off: its SQLite store
is refused with several workers) and runs ``inferlab bench``'s runner against it: non-streamed
and streamed requests at concurrency 32, after a warm-up. The simulator and the load generator
share the machine with the gateway, so on a 2-core host the second worker competes with them:
read the figures as "what one host gains", not as a per-core law. Writes
bench/results/workers-<date>.json and prints a markdown table.

    python bench/workers.py                  # 1 and 2 workers, 4000 requests per scenario
    python bench/workers.py --workers 1,2,4 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.benchmark.config import BenchmarkConfig
from inferlab.benchmark.runner import run_benchmark
from inferlab.testing.gateway_process import GatewayProcess, free_port, http_get

MODEL = "sim-model"


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "inferlab.testing.simulator", "--port", str(port),
                                "--tokens", "16"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if http_get(f"http://127.0.0.1:{port}/health")[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the engine simulator did not start")


def gateway(sim_port: int, workers: int) -> GatewayProcess:
    return GatewayProcess({
        "server": {"workers": workers},
        "features": {"metering": False},
        "models": [{"name": MODEL, "backend": "openai", "url": f"http://127.0.0.1:{sim_port}/v1",
                    "max_concurrency_per_replica": 1024}],
        "logging": {"level": "WARNING"},
    }, env={"PYTHONPATH": str(ROOT / "src")})


async def measure(url: str, requests: int, stream: bool) -> dict[str, float]:
    config = BenchmarkConfig(base_url=url + "/v1", model=MODEL, num_prompts=requests, concurrency=32, percentiles=(50.0, 99.0),
                             stream=stream, max_tokens=16, warmup=200)
    result = await run_benchmark(config)
    return {"requests_per_s": round(result.request_throughput, 1), "p50_ms": round(result.latency_ms["p50_e2el_ms"], 2),
            "p99_ms": round(result.latency_ms["p99_e2el_ms"], 2), "failed": result.failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--requests", type=int, default=4000, help="timed requests per scenario")
    args = parser.parse_args()
    sim_port = free_port()
    simulator = start_simulator(sim_port)
    rows: list[dict[str, object]] = []
    try:
        for workers in [int(n) for n in args.workers.split(",")]:
            gw = gateway(sim_port, workers).start()
            try:
                for stream in (False, True):
                    figures = asyncio.run(measure(gw.url, args.requests, stream))
                    rows.append({"workers": workers, "stream": stream, **figures})
                    print(rows[-1], flush=True)
            finally:
                gw.stop()
    finally:
        simulator.terminate()
        simulator.wait(10)
    report = {"date": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(), "machine": platform.processor() or
              platform.machine(), "load_avg": os.getloadavg(), "requests": args.requests, "rows": rows}
    out = ROOT / "bench" / "results" / f"workers-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print("\n| workers | stream | req/s (c=32) | p50 ms | p99 ms | failed |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['workers']} | {'yes' if row['stream'] else 'no'} | {row['requests_per_s']} | {row['p50_ms']} | "
              f"{row['p99_ms']} | {row['failed']} |")
    print(f"\nwritten to {out.relative_to(ROOT)}; load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
