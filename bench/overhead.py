"""Gateway overhead: the same benchmark against the engine simulator directly and through proxies.

Starts every target itself, on loopback only: the engine simulator (the "direct" baseline), the
bare aiohttp pass-through proxy (the practical floor of a Python proxy), the LiteLLM proxy when
bench/.venv-litellm exists (bash bench/litellm/setup.sh), and ``inferlab serve`` when it comes up
on GET /health within 20 s. Then, for each scenario, runs ``run_benchmark`` on each target in turn:

  latency     no stream, concurrency 1      → added latency p50/p99 versus direct
  throughput  no stream, concurrency 32     → requests per second
  stream      16 tokens 5 ms apart, conc 16 → TTFT and ITL

Prints a markdown table and writes bench/results/overhead-<date>.json.

    python bench/overhead.py                 # full counts
    python bench/overhead.py --scale 0.1     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.benchmark import BenchmarkConfig, BenchmarkResult, run_benchmark  # noqa: E402

MODEL = "sim-model"
INFERLAB_CONFIG = f"""models:
  - name: {MODEL}
    backend: openai
    url: http://127.0.0.1:{{sim_port}}/v1
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    concurrency: int
    num_prompts: int
    token_delay_s: float


SCENARIOS = (
    Scenario("latency", stream=False, concurrency=1, num_prompts=500, token_delay_s=0.0),
    Scenario("throughput", stream=False, concurrency=32, num_prompts=5000, token_delay_s=0.0),
    Scenario("stream", stream=True, concurrency=16, num_prompts=1000, token_delay_s=0.005),
)


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str


@contextmanager
def _process(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run one child process for the duration of the block; stop it (and only it) afterwards."""
    with open(logs / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def _wait_healthy(url: str, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.25)
    return False


async def _script_simulator(sim_url: str, **fields: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim_url}/_sim/script", json=fields) as response:
            response.raise_for_status()


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def _start_targets(stack: ExitStack, args: argparse.Namespace, logs: Path) -> list[Target]:
    """Start the processes; return the targets that answer their health check."""
    py, env = sys.executable, _child_env()
    sim = f"http://127.0.0.1:{args.sim_port}"
    stack.enter_context(_process("simulator", [
        py, "-m", "inferlab.testing.simulator", "--port", str(args.sim_port), "--tokens", "16",
        "--model", MODEL], logs, env))
    if not asyncio.run(_wait_healthy(f"{sim}/health", 15)):
        raise SystemExit(f"the engine simulator did not start; see {logs / 'simulator.log'}")
    targets = [Target("direct", f"{sim}/v1")]
    candidates: list[tuple[str, list[str], dict[str, str], int, str, float]] = [(
        "passthrough", [py, "bench/passthrough_proxy.py", "--port", str(args.passthrough_port),
                        "--upstream", sim], env, args.passthrough_port, "/health", 15)]
    if (ROOT / "bench/.venv-litellm/bin/litellm").exists():
        candidates.append(("litellm", ["bash", "bench/litellm/start.sh", str(args.litellm_port)],
                           {**env, "SIM_API_BASE": f"{sim}/v1"}, args.litellm_port, "/health/liveliness", 90))
    else:
        print("litellm: skipped (run bash bench/litellm/setup.sh to include it)")
    if (ROOT / "src/inferlab/cli.py").exists():
        config = logs / "inferlab.yaml"
        config.write_text(INFERLAB_CONFIG.format(sim_port=args.sim_port))
        serve = [py, "-c", "from inferlab.cli import main; main()", "serve", "--config", str(config),
                 "--port", str(args.inferlab_port)]
        candidates.append(("inferlab", serve, env, args.inferlab_port, "/health", 20))
    else:
        print("inferlab: skipped (src/inferlab/cli.py not found)")
    for name, argv, child_env, port, health, wait_s in candidates:
        stack.enter_context(_process(name, argv, logs, child_env))
        if asyncio.run(_wait_healthy(f"http://127.0.0.1:{port}{health}", wait_s)):
            targets.append(Target(name, f"http://127.0.0.1:{port}/v1"))
        else:
            print(f"{name}: skipped (no healthy answer within {wait_s:.0f} s; see its log below)")
            print(_tail(logs / f"{name}.log"))
    return targets


async def _run_scenarios(targets: list[Target], sim_url: str, scale: float) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        await _script_simulator(sim_url, token_delay_s=scenario.token_delay_s, completion_tokens=16)
        num = max(10, int(scenario.num_prompts * scale))
        results[scenario.name] = {}
        for target in targets:
            config = BenchmarkConfig(
                base_url=target.base_url, model=MODEL, num_prompts=num, concurrency=scenario.concurrency,
                stream=scenario.stream, max_tokens=16, prompt_words=32, timeout=60,
                warmup=min(scenario.concurrency * 2, num), label=f"{scenario.name}/{target.name}",
                percentiles=(50.0, 90.0, 99.0),
            )
            result: BenchmarkResult = await run_benchmark(config)
            results[scenario.name][target.name] = result.to_dict()
            print(f"  {scenario.name:<10} {target.name:<12} {result.completed}/{num} ok, "
                  f"{result.request_throughput:8.1f} req/s", flush=True)
    return results


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def markdown_table(results: dict[str, dict[str, Any]], targets: list[Target]) -> str:
    lat, thr, stream = results["latency"], results["throughput"], results["stream"]
    direct = lat["direct"]
    header = ("| target | c=1 p50 ms | added p50 ms | c=1 p99 ms | added p99 ms | c=32 req/s "
              "| stream TTFT p50 / p99 ms | ITL p50 / p99 ms | failed |")
    lines = [header, "|" + "---|" * 9]
    for target in targets:
        name = target.name
        failed = sum(results[s][name]["failed"] for s in results)
        lines.append(
            f"| {name} | {_fmt(lat[name]['p50_e2el_ms'])} "
            f"| {_fmt(lat[name]['p50_e2el_ms'] - direct['p50_e2el_ms'])} "
            f"| {_fmt(lat[name]['p99_e2el_ms'])} "
            f"| {_fmt(lat[name]['p99_e2el_ms'] - direct['p99_e2el_ms'])} "
            f"| {thr[name]['request_throughput']:.0f} "
            f"| {_fmt(stream[name]['p50_ttft_ms'])} / {_fmt(stream[name]['p99_ttft_ms'])} "
            f"| {_fmt(stream[name]['p50_itl_ms'])} / {_fmt(stream[name]['p99_itl_ms'])} | {failed} |"
        )
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every request count")
    parser.add_argument("--sim-port", type=int, default=9001)
    parser.add_argument("--passthrough-port", type=int, default=8200)
    parser.add_argument("--litellm-port", type=int, default=8300)
    parser.add_argument("--inferlab-port", type=int, default=8100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp, ExitStack() as stack:
        logs = Path(tmp)
        targets = _start_targets(stack, args, logs)
        print("targets: " + ", ".join(f"{t.name} ({t.base_url})" for t in targets), flush=True)
        sim_url = f"http://127.0.0.1:{args.sim_port}"
        results = asyncio.run(_run_scenarios(targets, sim_url, args.scale))
    table = markdown_table(results, targets)
    print("\n" + table)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    out = args.out / f"overhead-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": stamp,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "scale": args.scale,
        "scenarios": [asdict(replace(s, num_prompts=max(10, int(s.num_prompts * args.scale))))
                      for s in SCENARIOS],
        "targets": {t.name: t.base_url for t in targets},
        "results": results,
        "table_markdown": table,
    }
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwritten to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
