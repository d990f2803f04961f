"""Prefix-cache-aware routing against round-robin and least-outstanding, on real engines.

Two llama-server replicas (SmolLM2-135M, prompt cache on: per-slot reuse plus llama-server's
host-RAM prompt cache unless ``--cache-ram 0``) are started once; for each strategy a fresh
``inferlab serve`` routes to them, and a closed-loop client (``--concurrency`` users in flight)
sends streamed chats: many users, each bound to one of 8 system prompts of ~1,500 tokens, short
user turns. Every strategy gets its own 8 fresh system prompts so no phase inherits another's cache.

Reported per strategy: TTFT p50/p90, end-to-end latency p50/p90, throughput, and the engines'
prompt-cache hit ratio (``llamacpp:prompt_tokens_cached_total`` over all prompt tokens).

    python bench/routing_prefix.py                          # 48 requests per strategy, concurrency 4
    python bench/routing_prefix.py --parallel 8 --cache-ram 0  # cache-bound engines (the reported run)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.config import EngineSettings
from inferlab.coordinator.locate import find_llama_server, resolve_model_path
from inferlab.router import parse_prometheus
from inferlab.testing.gateway_process import GatewayProcess, free_port

MODEL = "smollm2-135m"
WORDS = [
    "time", "person", "year", "way", "day", "thing", "man", "world", "life", "hand", "part", "child", "eye",
    "woman", "place", "work", "week", "case", "point", "government", "company", "number", "group", "problem",
    "fact", "system", "program", "question", "night", "home", "water", "room", "mother", "area", "money",
    "story", "month", "lot", "right", "study", "book", "job", "word", "business", "issue", "side", "kind",
    "head", "house", "service",
]


def start_engine(binary: Path, gguf: Path, args: argparse.Namespace, logdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [str(binary), "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
            "--ctx-size", str(args.slot_ctx * args.parallel), "--parallel", str(args.parallel),
            "--threads", str(args.threads), "--metrics", "--slots", "--no-webui", "--cache-reuse", "256"]
    if args.cache_ram is not None:
        argv += ["--cache-ram", str(args.cache_ram)]
    log = (logdir / f"engine-{port}.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


async def wait_healthy(http: aiohttp.ClientSession, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with http.get(url + "/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{url} not healthy")


async def cache_counters(http: aiohttp.ClientSession, urls: list[str]) -> tuple[float, float]:
    processed = cached = 0.0
    for url in urls:
        async with http.get(url + "/metrics") as response:
            values = parse_prometheus(await response.text())
        processed += values.get("llamacpp:prompt_tokens_total", 0.0)
        cached += values.get("llamacpp:prompt_tokens_cached_total", 0.0)
    return processed, cached


def workload(seed: int, args: argparse.Namespace) -> tuple[list[bytes], list[bytes]]:
    """(warm-up bodies: one per system prompt, measured bodies)."""
    rng = random.Random(seed)
    systems = [f"You are assistant number {seed}-{p}. Follow the policy below.\n" +
               " ".join(rng.choices(WORDS, k=args.prompt_words)) for p in range(8)]
    warmup = [orjson.dumps({"model": MODEL, "max_tokens": 1, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": "Hello."}]}) for system in systems]
    bodies = []
    for i in range(args.requests):
        user = rng.randrange(args.users)
        messages = [{"role": "system", "content": systems[user % 8]},
                    {"role": "user", "content": f"User {user}, turn {i}: what about the {rng.choice(WORDS)}?"}]
        bodies.append(orjson.dumps({"model": MODEL, "messages": messages, "max_tokens": args.max_tokens,
                                    "stream": True, "stream_options": {"include_usage": True}}))
    return (warmup if args.warmup else []), bodies


async def one(http: aiohttp.ClientSession, url: str, body: bytes) -> dict[str, Any]:
    started = time.perf_counter()
    ttft = None
    prompt_tokens = 0
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        status = response.status
        async for line in response.content:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            event = orjson.loads(line[6:])
            if ttft is None and event.get("choices"):
                ttft = time.perf_counter() - started
            if event.get("usage"):
                prompt_tokens = event["usage"].get("prompt_tokens", 0)
    return {"status": status, "ttft": ttft, "latency": time.perf_counter() - started, "prompt_tokens": prompt_tokens}


async def run_open_loop(http: aiohttp.ClientSession, gateway: str, bodies: list[bytes], rate: float,
                        seed: int) -> tuple[list[dict[str, Any]], float]:
    """Poisson arrivals at ``rate`` per second (the same schedule for every strategy)."""
    rng = random.Random(seed)
    url = gateway + "/v1/chat/completions"
    tasks = []
    started = time.perf_counter()
    for body in bodies:
        tasks.append(asyncio.create_task(one(http, url, body)))
        await asyncio.sleep(rng.expovariate(rate))
    results = await asyncio.gather(*tasks)
    return list(results), time.perf_counter() - started


async def run_phase(
    http: aiohttp.ClientSession, gateway: str, bodies: list[bytes], concurrency: int
) -> tuple[list[dict[str, Any]], float]:
    queue = list(reversed(bodies))
    results: list[dict[str, Any]] = []
    url = gateway + "/v1/chat/completions"

    async def worker() -> None:
        while queue:
            results.append(await one(http, url, queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def summarise(strategy: str, results: list[dict[str, Any]], wall: float, hit: float) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == 200 and r["ttft"] is not None]
    ttft = [r["ttft"] for r in ok]
    latency = [r["latency"] for r in ok]
    return {
        "strategy": strategy, "requests": len(results), "ok": len(ok),
        "ttft_p50_s": pct(ttft, 50), "ttft_p90_s": pct(ttft, 90),
        "latency_p50_s": pct(latency, 50), "latency_p90_s": pct(latency, 90),
        "throughput_rps": len(ok) / wall, "cache_hit_ratio": hit,
        "prompt_tokens_mean": sum(r["prompt_tokens"] for r in ok) / max(1, len(ok)),
        "statuses": {str(k): v for k, v in Counter(r["status"] for r in results).items()},
    }


async def main_async(args: argparse.Namespace) -> None:
    binary = find_llama_server(EngineSettings())
    if binary is None:
        raise SystemExit("llama-server is not built: run `inferlab engines build`")
    gguf = resolve_model_path("embedded:smollm2")
    logdir = Path(tempfile.mkdtemp(prefix="inferlab-bench-"))
    engines = [start_engine(binary, gguf, args, logdir) for _ in range(2)]
    urls = [url for _, url in engines]
    rows = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            for url in urls:
                await wait_healthy(http, url)
            for index, strategy in enumerate(args.strategies.split(",")):
                config = {"models": [{"name": MODEL, "backend": "llamacpp", "urls": urls,
                                      "max_concurrency_per_replica": args.parallel,
                                      "routing": {"strategy": strategy}}],
                          "logging": {"level": "WARNING"}}
                gateway = GatewayProcess(config).start(timeout=60)
                try:
                    warmup, bodies = workload(1000 + index, args)
                    await run_phase(http, gateway.url, warmup, 2)
                    before = await cache_counters(http, urls)
                    if args.rate:
                        results, wall = await run_open_loop(http, gateway.url, bodies, args.rate, seed=7)
                    else:
                        results, wall = await run_phase(http, gateway.url, bodies, args.concurrency)
                    after = await cache_counters(http, urls)
                finally:
                    gateway.stop()
                processed, cached = after[0] - before[0], after[1] - before[1]
                rows.append(summarise(strategy, results, wall, cached / max(1.0, processed + cached)))
                print(f"{strategy}: done in {wall:.1f}s", flush=True)
    finally:
        for process, _ in engines:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n2 x llama-server (SmolLM2-135M Q4_1, {args.parallel} slots x {args.slot_ctx} ctx, {args.threads} thread(s) each, "
          f"cache-ram {args.cache_ram if args.cache_ram is not None else 'default'}); {args.requests} requests per "
          f"strategy, {f'open loop {args.rate} req/s' if args.rate else f'concurrency {args.concurrency}'}, "
          f"{args.users} users over 8 system prompts of {args.prompt_words} "
          f"words, max_tokens {args.max_tokens}, warm-up {'on' if args.warmup else 'off'}\n")
    print("| strategy | TTFT p50 | TTFT p90 | latency p50 | latency p90 | throughput | cache hits | ok |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['strategy']} | {r['ttft_p50_s']*1000:.0f} ms | {r['ttft_p90_s']*1000:.0f} ms | "
              f"{r['latency_p50_s']*1000:.0f} ms | {r['latency_p90_s']*1000:.0f} ms | {r['throughput_rps']:.2f} req/s | "
              f"{r['cache_hit_ratio']:.0%} | {r['ok']}/{r['requests']} {r['statuses']} |")
    print(f"\nmean prompt tokens: {rows[0]['prompt_tokens_mean']:.0f}")
    out = ROOT / "bench" / "results" / f"routing-prefix-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(orjson.dumps({"args": vars(args), "rows": rows}, option=orjson.OPT_INDENT_2))
    print(f"written to {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=48, help="per strategy")
    parser.add_argument("--concurrency", type=int, default=4, help="closed loop: requests in flight")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop instead: Poisson arrivals per second, the same for every strategy")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=1100, help="~1,500 SmolLM2 tokens")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4, help="slots per engine")
    parser.add_argument("--slot-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-ram", type=int, default=None, help="llama-server --cache-ram MiB (0: off)")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="first send each system prompt once through the gateway under test (untimed)")
    parser.add_argument("--strategies", default="prefix_aware,round_robin,least_outstanding")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
