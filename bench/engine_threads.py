"""The real engine's thread count beside the gateway on one host: tokens/s and TTFT through InferLab.

A managed llama-server takes llama.cpp's default thread count (one per core); the gateway then
shares those cores with it. This starts `inferlab serve` once, in front of an engine on a fixed
port, and for each round restarts llama-server (SmolLM2-135M, the cached build) with each thread
count in turn (the order alternating between rounds), measuring the same streamed load through the
gateway each time.

    python bench/engine_threads.py --threads 2,1 --rounds 4 --concurrency 4 --max-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
from datetime import UTC, datetime
from statistics import median

from real_engine import MODEL, ROOT, measure, start_engine, wait_healthy  # it puts src/ on the path

from inferlab.testing.gateway_process import GatewayProcess, free_port

FIGURES = ("output_throughput", "median_ttft_ms", "median_itl_ms", "median_e2el_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="2,1", help="the thread counts to compare, comma-separated")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    counts = [int(value) for value in args.threads.split(",")]

    engine_port = free_port()
    gateway = GatewayProcess({
        "models": [{"name": MODEL, "backend": "llamacpp", "url": f"http://127.0.0.1:{engine_port}"}],
        "logging": {"level": "WARNING"},
    })
    results: dict[int, list[dict[str, float]]] = {count: [] for count in counts}
    gateway.start()
    try:
        for round_no in range(args.rounds):
            for count in counts if round_no % 2 == 0 else counts[::-1]:
                engine = start_engine(engine_port, args.concurrency, threads=count)
                try:
                    wait_healthy(engine_port)
                    figures = asyncio.run(measure(gateway.url + "/v1", args, f"threads={count}"))
                finally:
                    engine.terminate()
                    engine.wait(10)
                results[count].append(figures)
                print(f"round {round_no + 1} threads={count} {figures}", flush=True)
    finally:
        gateway.stop()
    summary = {str(count): {name: median(r[name] for r in rows) for name in FIGURES} for count, rows in results.items()}
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / f"engine-threads-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.write_text(json.dumps({"machine": platform.uname()._asdict(), "args": vars(args),
                               "rounds": {str(k): v for k, v in results.items()}, "summary": summary}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
