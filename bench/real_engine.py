"""Tokens/s with the real engine: llama-server (SmolLM2-135M) measured directly and through InferLab,
in one run, alternating rounds so both see the same machine state.

Starts one llama-server (the cached build) without an API key, and `inferlab serve` pointing at it
as an engine "someone else runs" (models[].url), so both paths reach the very same engine.

    python bench/real_engine.py --rounds 3 --num-prompts 24 --concurrency 4 --max-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.config import EngineSettings
from inferlab.coordinator.locate import find_llama_server, resolve_model_path
from inferlab.testing.gateway_process import GatewayProcess, free_port, http_get

MODEL = "smollm2-135m"


def start_engine(port: int, parallel: int, threads: int | None = None) -> subprocess.Popen[bytes]:
    """llama-server on ``port``; ``threads``: its ``-t`` (None: llama.cpp's own default)."""
    binary = find_llama_server(EngineSettings())
    if binary is None:
        raise SystemExit("llama-server is not built: run `inferlab engines build`")
    argv = [str(binary), "-m", str(resolve_model_path("embedded:smollm2")), "--host", "127.0.0.1",
            "--port", str(port), "-c", str(2048 * parallel), "-np", str(parallel), "--alias", MODEL, "--no-webui"]
    if threads is not None:
        argv += ["-t", str(threads)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(port: int, deadline_s: float = 60.0) -> None:
    until = time.monotonic() + deadline_s
    while time.monotonic() < until:
        try:
            if http_get(f"http://127.0.0.1:{port}/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"llama-server on port {port} did not become healthy in {deadline_s:g} s")


async def measure(url: str, args: argparse.Namespace, label: str) -> dict[str, float]:
    config = BenchmarkConfig(
        base_url=url, model=MODEL, num_prompts=args.num_prompts, concurrency=args.concurrency,
        max_tokens=args.max_tokens, stream=True, prompt_words=32, warmup=2, label=label, timeout=600,
        keepalive=False,  # llama-server drops a kept-alive connection after a stream: same for both paths
    )
    result = await run_benchmark(config)
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result.__dict__)
    return {k: data[k] for k in ("output_throughput", "median_ttft_ms", "median_itl_ms", "median_e2el_ms", "failed")}


async def main_async(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"direct": [], "inferlab": []}
    for round_no in range(args.rounds):
        for name, url in (("direct", args.engine_url), ("inferlab", args.gateway_url)):
            figures = await measure(url, args, name)
            results[name].append(figures)
            print(f"round {round_no + 1} {name:8s} {figures}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-prompts", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    engine_port = free_port()
    engine = start_engine(engine_port, args.concurrency)
    gateway = GatewayProcess({
        "models": [{"name": MODEL, "backend": "llamacpp", "url": f"http://127.0.0.1:{engine_port}"}],
        "logging": {"level": "WARNING"},
    })
    try:
        wait_healthy(engine_port)
        gateway.start()
        args.engine_url, args.gateway_url = f"http://127.0.0.1:{engine_port}/v1", gateway.url + "/v1"
        results = asyncio.run(main_async(args))
    finally:
        gateway.stop()
        engine.terminate()
        engine.wait(10)
    direct = median(r["output_throughput"] for r in results["direct"])
    through = median(r["output_throughput"] for r in results["inferlab"])
    summary = {"direct_tok_s": direct, "inferlab_tok_s": through, "ratio": through / direct}
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / f"real-engine-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.write_text(json.dumps({"machine": platform.uname()._asdict(), "args": vars(args),
                               "rounds": results, "summary": summary}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
