"""The quantisation comparison recipe: requantise the embedded GGUF, serve each file, evaluate each,
and put the planning toolkit's memory figures next to the measured score, memory and speed.

1. ``llama-quantize --allow-requantize`` turns the shipped SmolLM2-135M Q4_1 into each ``--quant``
   (built once with ``inferlab engines build --tool llama-quantize``);
2. one ``inferlab serve`` runs every file as its own model (``smollm2-q4_1``, ``smollm2-q8_0``...);
3. ``inferlab eval --models ...`` evaluates them in one run, through the gateway;
4. per model: file size, the planning toolkit's weights/total memory estimate, the engine's
   resident memory when ready and after the run (which includes llama-server's prompt cache in
   RAM), decode speed by ``inferlab bench``, and the evaluation's scores with intervals.

Requantising cannot restore what Q4_1 already lost: a Q8_0 made from Q4_1 stores the Q4_1 weights
at 8 bits (nearly the same numbers, more bytes), so its row shows the memory and speed of Q8_0, and a
quality difference from rounding noise only. A lower format (Q4_0) loses real precision.

    python bench/quantisation_eval.py --quant Q8_0 --limit 82 --concurrency 2 --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.config import EngineSettings
from inferlab.coordinator.locate import built_llama_tool, resolve_model_path
from inferlab.evaluation import Deployment, EvalRun, price_result
from inferlab.planning import service
from inferlab.planning.catalogue import load_catalogue
from inferlab.planning.gguf import model_from_gguf
from inferlab.planning.schemas import VramIn
from inferlab.testing.gateway_process import GatewayProcess

SHIPPED = "Q4_1"


def requantise(source: Path, quant: str, directory: Path) -> Path:
    tool = built_llama_tool(EngineSettings().cache_dir, "llama-quantize")
    if not tool.is_file():
        raise SystemExit("llama-quantize is not built: run `inferlab engines build --tool llama-quantize`")
    target = directory / f"SmolLM2-135M-Instruct.{quant}-from-{SHIPPED}.gguf"
    if not target.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(tool), "--allow-requantize", str(source), str(target), quant], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return target


def model_name(quant: str) -> str:
    return f"smollm2-{quant.lower()}"


def gateway_config(files: dict[str, Path], parallel: int, threads: int) -> dict[str, Any]:
    models = [{"name": model_name(quant), "backend": "llamacpp", "path": str(path), "context_size": 2048,
               "parallel": parallel, "fim_template": "starcoder", "embeddings": False,
               "engine_args": ["--threads", str(threads)],
               "retry": {"attempt_timeout_s": 900, "max_attempts": 1}}
              for quant, path in files.items()]
    return {"models": models, "logging": {"level": "INFO"}, "engines": {"prefer": "llama-server"}}


def engine_rss_mib(gateway: GatewayProcess) -> dict[str, float]:
    """Resident memory of each model's llama-server (its pid from the gateway's log)."""
    sizes = {}
    for line in gateway.logs().splitlines():
        if line.startswith("{") and '"engine process started"' in line:
            entry = json.loads(line)
            status = Path(f"/proc/{entry['pid']}/status").read_text()
            rss_kib = next(int(row.split()[1]) for row in status.splitlines() if row.startswith("VmRSS:"))
            sizes[entry["engine"]] = rss_kib / 1024
    return sizes


def planned_memory(path: Path, quant: str, sequences: int) -> dict[str, float]:
    """The planning toolkit's estimate for the engine as configured: 2,048 tokens x ``sequences`` slots."""
    spec = model_from_gguf(path, model_id=f"smollm2-{quant.lower()}-file")
    catalogue = load_catalogue().with_model(spec)
    answer = service.vram(catalogue, VramIn(model=spec.id, gpu="cpu-ddr5-5600", quant=quant, memory_gb=32,
                                            context=2048, batch=sequences))
    per_device = answer["per_device_gib"]
    return {"weights_mib": per_device["weights"] * 1024, "required_mib": per_device["required"] * 1024}


def speeds(url: str, models: list[str], rounds: int = 3) -> dict[str, dict[str, float]]:
    """Decode speed of each model through the gateway (``inferlab bench``: 8 streamed requests one at a
    time, 64 tokens each), in alternating rounds so every model sees the same machine; medians."""
    seen: dict[str, list[dict[str, float]]] = {model: [] for model in models}
    for _ in range(rounds):
        for model in models:
            config = BenchmarkConfig(base_url=url, model=model, num_prompts=8, concurrency=1, max_tokens=64,
                                     stream=True, prompt_words=32, warmup=1, timeout=600, keepalive=False, label=model)
            data = asyncio.run(run_benchmark(config)).to_dict()
            seen[model].append({"output_tokens_per_s": data["output_throughput"], "median_ttft_ms": data["median_ttft_ms"],
                                "median_itl_ms": data["median_itl_ms"], "failed": data["failed"]})
    return {model: {key: median(r[key] for r in runs) for key in runs[0]} | {"rounds": [r["output_tokens_per_s"] for r in runs]}
            for model, runs in seen.items()}


def price_run(path: Path, gpu: str, quants: dict[str, str]) -> None:
    """Add to the saved run each model's cost per 1,000 problems if served on ``gpu`` (planning toolkit prices)."""
    run = EvalRun.load(path)
    catalogue = load_catalogue()
    priced = tuple(price_result(r, Deployment("smollm2-135m", gpu, quants[r.model]), catalogue) for r in run.results)
    EvalRun(run.base_url, run.started_at, run.settings, run.isolation, priced).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quant", action="append", default=None, help="formats to make from Q4_1 (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each suite (default: all)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="llama-server threads per engine (1: steady on a shared 2-core machine)")
    parser.add_argument("--max-tokens", type=int, default=256, help="max_tokens of a HumanEval answer")
    parser.add_argument("--infill-max-tokens", type=int, default=64)
    parser.add_argument("--models-dir", type=Path, default=Path("~/.cache/inferlab/models").expanduser())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--price-on", default="l4", help="catalogue accelerator to price 1,000 problems on")
    args = parser.parse_args()
    source = resolve_model_path("embedded:smollm2")
    files = {SHIPPED: source} | {quant: requantise(source, quant, args.models_dir) for quant in args.quant or ["Q8_0"]}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    result_path = args.out / f"quantisation-eval-{stamp}.json"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the gateway and its engines on the way out
    gateway = GatewayProcess(gateway_config(files, parallel=args.concurrency, threads=args.threads)).start(timeout=300)
    try:
        rss_ready = engine_rss_mib(gateway)
        argv = [sys.executable, "-m", "inferlab", "eval", "--base-url", gateway.url + "/v1",
                "--models", ",".join(model_name(q) for q in files), "--concurrency", str(args.concurrency),
                "--max-tokens", str(args.max_tokens), "--infill-max-tokens", str(args.infill_max_tokens),
                "--no-cache", "--json", str(result_path), "--quiet",
                "--timeout", "900"]
        if args.limit:
            argv += ["--limit", str(args.limit)]
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        elapsed = time.perf_counter() - started
        rss = engine_rss_mib(gateway)
        measured = speeds(gateway.url + "/v1", [model_name(q) for q in files])
    finally:
        gateway.stop()
    price_run(result_path, args.price_on, {model_name(q): q for q in files})
    run = json.loads(result_path.read_text())
    run["quantisation"] = {
        "machine": {"cpus": 2, "platform": platform.platform(), "python": platform.python_version()},
        "elapsed_s": elapsed,
        "models": {model_name(q): {"quant": q, "file": str(p), "file_mib": p.stat().st_size / 2**20,
                                   "engine_rss_ready_mib": rss_ready.get(model_name(q)),
                                   "engine_rss_mib": rss.get(model_name(q)), "speed": measured[model_name(q)],
                                   **planned_memory(p, q, args.concurrency)}
                   for q, p in files.items()},
    }
    result_path.write_text(json.dumps(run, indent=2) + "\n")
    print_rows(run)
    print(f"written {result_path}")


def print_rows(run: dict[str, Any]) -> None:
    memory = run["quantisation"]["models"]
    print("| model | suite | score [95% CI] | problems | wall s | file MiB | planned weights MiB | engine RSS MiB"
          " | decode tok/s | median TTFT ms | $ / 1k problems |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for result in run["results"]:
        score, info = result["score"], memory[result["model"]]
        print(f"| {result['model']} | {result['suite']} | {score['value']:.3f} [{score['low']:.3f}, {score['high']:.3f}]"
              f" | {result['problems']} | {result['wall_seconds']:.0f} | {info['file_mib']:.1f}"
              f" | {info['weights_mib']:.1f} | {info['engine_rss_mib'] or 0:.0f}"
              f" | {info['speed']['output_tokens_per_s']:.1f} | {info['speed']['median_ttft_ms']:.0f}"
              f" | {result['cost_per_1k_problems_usd'] or 0:.4f} |")


if __name__ == "__main__":
    main()
