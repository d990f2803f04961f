"""The browser hybrid on this machine, in Debian's headless Chromium: model load (cold: download,
SHA-256, Cache API, wllama; cached: from the Cache API), local decode speed and time to first token
(wllama in the page, WebAssembly on the CPU) against the same GGUF through InferLab and
llama-server, and the client's per-request decision overhead.

    python bench/browser.py [--runs 3] [--max-tokens 64]

Starts llama-server (SmolLM2-135M Q4_1) and `inferlab serve` with the browser catalogue, then drives the page
through Playwright (Chromium at /usr/bin/chromium; the client built by ./dev setup test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx2 as httpx

from inferlab.config import EngineSettings
from inferlab.coordinator.locate import find_llama_server, resolve_model_path
from inferlab.testing.gateway_process import GatewayProcess, llama_server

MODEL = "smollm2-135m"
PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]

LOAD = """
async ({cached}) => {
  const m = await import('/browser/client/inferlab-browser.js');
  const catalogue = await (await fetch('/v1/browser/models')).json();
  const model = catalogue.data[0];
  const t0 = performance.now();
  const file = await m.loadModelFile(model, location.origin);
  const t1 = performance.now();
  const engine = new m.LocalEngine(new URL('/browser/client/wllama.wasm', location.origin).toString());
  await engine.load(model.id, file.blob, model.context_size);
  const t2 = performance.now();
  window.engine = engine;
  return { cached: file.cached, fileMs: t1 - t0, wllamaMs: t2 - t1, totalMs: t2 - t0, threads: engine.threads };
}
"""

GENERATE = """
async ({policy, maxTokens, messages}) => {
  const { InferLabBrowser } = await import('/browser/client/inferlab-browser.js');
  window.clients ??= {};
  window.clients[policy] ??= new InferLabBrowser({ policy });
  const stream = await window.clients[policy].chat.completions.create({ model: 'smollm2-135m', messages,
    stream: true, max_tokens: maxTokens, temperature: 0, stream_options: { include_usage: true } });
  let usage = null;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  await window.clients[policy].flushReports();
  return { info: stream.inferlab, usage };
}
"""

DECIDE = """
async ({n}) => {
  const { InferLabBrowser } = await import('/browser/client/inferlab-browser.js');
  const t0 = performance.now();
  const client = new InferLabBrowser({});
  const first = await client.decide('smollm2-135m');  // catalogue, capability probe, benchmark (once)
  const firstMs = performance.now() - t0;
  const times = [];
  for (let i = 0; i < n; i++) times.push((await client.decide('smollm2-135m')).decisionMs);
  times.sort((a, b) => a - b);
  return { firstMs, firstDecisionMs: first.decisionMs, p50: times[Math.floor(n / 2)], p99: times[Math.floor(n * 0.99)],
           max: times[n - 1], where: first.where, reasons: first.reasons };
}
"""


def direct_llama(url: str, max_tokens: int) -> dict[str, float]:
    """One streamed answer straight from llama-server: TTFT and decode tokens/s."""
    body = {"messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content":"' in line:
                first = first or time.perf_counter()
                tokens += 1
    end = time.perf_counter()
    assert first is not None
    return {"ttft_ms": (first - started) * 1000, "tokens_per_s": (tokens - 1) / (end - first), "tokens": tokens}


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = find_llama_server(EngineSettings())
    assert server is not None, "llama-server is not built: inferlab engines build"
    gguf = resolve_model_path("embedded:smollm2")
    os.environ["PYTHONPATH"] = str(ROOT / "src")  # the gateway process runs this checkout's InferLab
    results: dict[str, Any] = {"time": datetime.now(UTC).isoformat(), "load": os.getloadavg(), "runs": args.runs,
                               "max_tokens": args.max_tokens}
    with llama_server(server, gguf, ctx_size=4096, parallel=1) as engine:
        config = {"features": {"browser": True}, "logging": {"level": "WARNING"},
                  "models": [{"name": MODEL, "backend": "openai", "url": f"{engine}/v1", "engine": "llamacpp"}]}
        gateway = GatewayProcess(config).start(timeout=120)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                cold, cached = [], []
                for _ in range(args.runs):
                    context = browser.new_context()  # an empty Cache API: a cold load
                    for _ in range(2):  # then the same context's cache: a cached load
                        page = context.new_page()
                        page.goto(gateway.url + "/playground")
                        found = page.evaluate(LOAD, {"cached": False})
                        (cached if found["cached"] else cold).append(found)
                        page.evaluate("() => window.engine.exit()")
                        page.close()
                    context.close()
                results["load_cold"] = cold
                results["load_cached"] = cached
                context = browser.new_context()
                page = context.new_page()
                page.goto(gateway.url + "/playground")
                runs: dict[str, list[dict[str, Any]]] = {"server-only": [], "local-only": []}  # server first: no wllama loaded
                for policy, found_runs in runs.items():
                    page.evaluate(GENERATE, {"policy": policy, "maxTokens": 4, "messages": PROMPT})  # warm
                    for _ in range(args.runs):
                        found_runs.append(page.evaluate(GENERATE, {"policy": policy, "maxTokens": args.max_tokens,
                                                                   "messages": PROMPT}))
                results["generate"] = runs
                results["decision"] = page.evaluate(DECIDE, {"n": 1000})
                browser.close()
            results["llama_server_direct"] = [direct_llama(engine, args.max_tokens) for _ in range(args.runs)]
        finally:
            gateway.stop()
    summary = {
        "model load, cold (download + SHA-256 + cache + wllama), ms": median([r["totalMs"] for r in cold]),
        "  of which file (download, verify, cache), ms": median([r["fileMs"] for r in cold]),
        "model load, cached (Cache API + wllama), ms": median([r["totalMs"] for r in cached]),
        "  of which file (Cache API), ms": median([r["fileMs"] for r in cached]),
        "local decode tokens/s (wllama, page)": median([r["info"]["tokensPerSecond"] for r in runs["local-only"]]),
        "server decode tokens/s (page → InferLab → llama-server)":
            median([r["info"]["tokensPerSecond"] for r in runs["server-only"]]),
        "llama-server direct decode tokens/s": median([r["tokens_per_s"] for r in results["llama_server_direct"]]),
        "local TTFT ms": median([r["info"]["ttftMs"] for r in runs["local-only"]]),
        "server TTFT ms (page → InferLab → llama-server)": median([r["info"]["ttftMs"] for r in runs["server-only"]]),
        "llama-server direct TTFT ms": median([r["ttft_ms"] for r in results["llama_server_direct"]]),
        "decision p50 / p99 / max ms": (round(results["decision"]["p50"], 4), round(results["decision"]["p99"], 4),
                                         round(results["decision"]["max"], 4)),
        "first decision incl. catalogue, probe, benchmark, ms": round(results["decision"]["firstMs"], 1),
        "wllama threads": cold[0]["threads"],
    }
    results["summary"] = summary
    out = ROOT / "bench" / "results" / f"browser-{datetime.now(UTC):%Y-%m-%d-%H%M%S}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    for name, value in summary.items():
        print(f"| {name} | {value} |")
    print(f"load average during the run: {results['load']} → {os.getloadavg()}; written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
