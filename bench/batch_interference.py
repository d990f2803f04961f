"""Batch interference: interactive TTFT with and without a 500-request batch on the same pool.

A real ``inferlab serve`` process (metering on, so there is a store for the Batch API) in front of
the engine simulator (a scriptable OpenAI-compatible server, not a real engine) run as a process of
its own. The simulator answers ``--tokens`` chunks ``--token-delay-ms`` apart and, beyond
``--saturation`` running requests, slows every token in proportion — a real engine's shared
compute (prefill, ``--prefill-delay-ms``, is not slowed). The pool has ``--capacity`` slots.
Interactive traffic is ``--interactive`` closed-loop streaming chats (TTFT measured at the first
content chunk); it is measured for ``--seconds`` alone, then again while a ``--batch``-line batch
runs (the runner at the lowest class, ``--concurrency`` lines at a time, starting a line only
while more than ``--reserve`` slots are free). Reported: TTFT p50/p95 of both phases and their
ratio, the whole requests' latency (decode slowed by the batch's running lines), and the batch's
progress and rate.

    python bench/batch_interference.py [--batch 500] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.testing.gateway_process import free_port, http_get

MODEL = "sim-model"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spawn(argv: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if http_get(url, timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


async def interactive(session: aiohttp.ClientSession, base: str, clients: int, seconds: float) -> dict[str, Any]:
    ttft: list[float] = []
    total: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    body = {"model": MODEL, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}

    async def one() -> None:
        nonlocal errors
        while time.monotonic() < stop:
            started = time.perf_counter()
            first = None
            async with session.post(base + "/v1/chat/completions", json=body) as response:
                if response.status != 200:
                    errors += 1
                    await response.read()
                    continue
                async for line in response.content:
                    if first is None and line.startswith(b"data: {") and b'"content"' in line:
                        first = time.perf_counter() - started
                if first is not None:
                    ttft.append(first * 1000)
                    total.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one() for _ in range(clients)))
    return {"requests": len(ttft), "errors": errors, "ttft_p50_ms": round(statistics.median(ttft), 2),
            "ttft_p95_ms": round(percentile(ttft, 95), 2), "total_p50_ms": round(statistics.median(total), 2),
            "total_p95_ms": round(percentile(total, 95), 2)}


async def batch_progress(session: aiohttp.ClientSession, base: str, batch_id: str) -> dict[str, Any]:
    async with session.get(f"{base}/v1/batches/{batch_id}") as response:
        return dict(await response.json())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--interactive", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--reserve", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--token-delay-ms", type=float, default=10)
    parser.add_argument("--saturation", type=int, default=2)
    parser.add_argument("--prefill-delay-ms", type=float, default=20)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="inferlab-batch-bench-"))
    sim_port, port = free_port(), free_port()
    sim = spawn([sys.executable, "-m", "inferlab.testing.simulator", "--port", str(sim_port), "--model", MODEL,
                 "--tokens", str(args.tokens), "--token-delay-ms", str(args.token_delay_ms),
                 "--saturation-concurrency", str(args.saturation), "--prefill-delay-ms", str(args.prefill_delay_ms)])
    config = {"features": {"metering": True}, "logging": {"level": "WARNING"},
              "batches": {"concurrency": args.concurrency, "reserve_slots": args.reserve, "poll_s": 0.2},
              "models": [{"name": MODEL, "backend": "openai", "url": f"http://127.0.0.1:{sim_port}/v1",
                          "max_concurrency_per_replica": args.capacity}]}
    (workdir / "inferlab.yaml").write_text(yaml.safe_dump(config))
    gateway = spawn([sys.executable, "-m", "inferlab", "serve", "--config", str(workdir / "inferlab.yaml"),
                     "--port", str(port), "--data-dir", str(workdir / "data")], workdir / "gateway.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/health")
        wait_http(base + "/ready")
        async with aiohttp.ClientSession() as session:
            await interactive(session, base, args.interactive, 2)  # warm up
            alone = await interactive(session, base, args.interactive, args.seconds)
            lines = "\n".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                          "body": {"model": MODEL, "max_tokens": args.tokens,
                                                   "messages": [{"role": "user", "content": f"job {i}"}]}})
                              for i in range(args.batch))
            form = aiohttp.FormData()
            form.add_field("purpose", "batch")
            form.add_field("file", lines.encode(), filename="batch.jsonl")
            async with session.post(base + "/v1/files", data=form) as response:
                uploaded = await response.json()
            async with session.post(base + "/v1/batches", json={"input_file_id": uploaded["id"],
                                                                  "endpoint": "/v1/chat/completions",
                                                                  "completion_window": "24h"}) as response:
                batch = await response.json()
            started = time.monotonic()
            await asyncio.sleep(1.0)  # the runner has lines in flight
            during = await interactive(session, base, args.interactive, args.seconds)
            progress = await batch_progress(session, base, batch["id"])
            done_in_window = progress["request_counts"]["completed"]
            while progress["status"] not in ("completed", "failed", "cancelled"):
                await asyncio.sleep(0.5)
                progress = await batch_progress(session, base, batch["id"])
            elapsed = time.monotonic() - started
    finally:
        gateway.terminate()
        gateway.wait(30)
        sim.terminate()
        sim.wait(10)
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "settings": vars(args), "alone": alone, "with_batch": during,
        "ttft_p95_ratio": round(during["ttft_p95_ms"] / alone["ttft_p95_ms"], 2),
        "ttft_p50_ratio": round(during["ttft_p50_ms"] / alone["ttft_p50_ms"], 2),
        "total_p95_ratio": round(during["total_p95_ms"] / alone["total_p95_ms"], 2),
        "batch": {"status": progress["status"], "completed": progress["request_counts"]["completed"],
                  "failed": progress["request_counts"]["failed"], "seconds": round(elapsed, 1),
                  "lines_per_s": round(progress["request_counts"]["completed"] / elapsed, 1),
                  "completed_while_measured": done_in_window},
    }
    out = ROOT / "bench" / "results" / f"batch-interference-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
