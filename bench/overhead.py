"""Gateway overhead: the same benchmark against the engine simulator directly and through proxies.

Starts every target itself, on loopback only: the engine simulator (the "direct" baseline), the
bare aiohttp pass-through proxy (the practical floor of a Python proxy), the LiteLLM proxy when
bench/.venv-litellm exists (bash bench/litellm/setup.sh), and ``inferlab serve`` once per InferLab
tree and feature set (see bench/overhead_targets.py) that comes up on GET /health. Then, for each
scenario, runs ``run_benchmark`` on each target in turn:

  latency     no stream, concurrency 1      → added latency p50/p99 versus direct
  throughput  no stream, concurrency 32     → requests per second
  stream      16 tokens 5 ms apart, conc 16 → TTFT and ITL
  stream1     the same streams one at a time → TTFT with no other request in the gateway
              (only when named in --scenarios: a diagnosis, not one of the goals)

and reads each proxy's CPU time (user + system, /proc) before and after: CPU ms per request.
Every request is distinct and has temperature 0, so with the response cache on every one is looked
up, misses and is stored. Prints a markdown table, each gateway's figures against the
pass-through's (the refactor's goals), and writes bench/results/overhead-<date>.json.

    python bench/overhead.py                 # full counts, the working tree, features off
    python bench/overhead.py --scale 0.1     # a quick look
    python bench/overhead.py --inferlab-ref v0.2=8f33aa7 --inferlab-ref now=WORKTREE \\
        --features off,on --pin              # two versions, both feature sets, pinned to cores
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from overhead_report import Rounds, goal_intervals, goal_ratios, markdown_table, median_row, ratio_table
from overhead_targets import (
    FEATURE_SETS,
    MODEL,
    WORKTREE,
    Launcher,
    Pinning,
    Target,
    Tree,
    cpu_seconds,
    gateway_counters,
    parse_tree,
    resolve,
    start_baselines,
    start_inferlab,
    start_simulator,
)

from inferlab.benchmark import BenchmarkConfig, BenchmarkResult, run_benchmark


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
    Scenario("stream1", stream=True, concurrency=1, num_prompts=300, token_delay_s=0.005),
)
DEFAULT_SCENARIOS = ("latency", "throughput", "stream")


async def _script_simulator(sim_url: str, **fields: Any) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{sim_url}/_sim/script", json=fields) as answer:
        answer.raise_for_status()


async def _run_scenarios(
    targets: list[Target], sim: Target, scale: float, chosen: list[str], rounds: int = 1
) -> Rounds:
    """Each chosen scenario against every target in turn, ``rounds`` times (targets alternate within
    each round, in turn forwards and backwards): every target's row of every round."""
    results: Rounds = {}
    sim_url = sim.base_url.removesuffix("/v1")
    for seed, scenario in enumerate(SCENARIOS, start=1):
        if scenario.name not in chosen:
            continue
        await _script_simulator(sim_url, token_delay_s=scenario.token_delay_s, completion_tokens=16)
        num = max(10, int(scenario.num_prompts * scale))
        rows: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
        for round_ in range(rounds):  # new prompts each round: a repeated one would be a cache hit
            for target in targets if round_ % 2 == 0 else targets[::-1]:  # no target always first
                rows[target.name].append(await _run_one(scenario, target, sim, num, seed * 1000 + round_))
        results[scenario.name] = rows
    return results


async def _run_one(scenario: Scenario, target: Target, sim: Target, num: int, seed: int) -> dict[str, Any]:
    config = BenchmarkConfig(
        base_url=target.base_url, model=MODEL, api_key=target.api_key, num_prompts=num,
        concurrency=scenario.concurrency, stream=scenario.stream, max_tokens=16, temperature=0.0,
        prompt_words=32, timeout=60, warmup=min(scenario.concurrency * 2, num),
        label=f"{scenario.name}/{target.name}", percentiles=(50.0, 90.0, 99.0), seed=seed,
    )
    measured = [p for p in (target.pid, sim.pid) if p is not None]
    before = [cpu_seconds(p) for p in measured]
    result: BenchmarkResult = await run_benchmark(config)
    used = [(cpu_seconds(p) - b) * 1000 / (num + config.warmup) for p, b in zip(measured, before, strict=True)]
    row = result.to_dict()
    row["gateway_cpu_ms_per_request"] = used[0] if target is not sim else None
    row["simulator_cpu_ms_per_request"] = used[-1]
    cpu = "" if target is sim else f", {used[0]:.3f} CPU ms/req"
    print(f"  {scenario.name:<10} {target.name:<16} {result.completed}/{num} ok, "
          f"{result.request_throughput:8.1f} req/s{cpu}", flush=True)
    return row


_ROUND_FIGURES = ("p50_ttft_ms", "mean_ttft_ms", "p99_ttft_ms", "p50_e2el_ms", "request_throughput",
                  "gateway_cpu_ms_per_request", "failed")


def _features(values: list[str] | None) -> list[str]:
    chosen = [part.strip() for value in values or ["off"] for part in value.split(",") if part.strip()]
    unknown = set(chosen) - set(FEATURE_SETS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--features: choose from {', '.join(FEATURE_SETS)}")
    return list(dict.fromkeys(chosen))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every request count")
    parser.add_argument("--inferlab-ref", action="append", type=parse_tree, default=None, metavar="NAME=REF",
                        help=f"an InferLab to run: a git ref, a directory or {WORKTREE} (repeat; "
                             f"default: inferlab={WORKTREE}, the tree this script is in)")
    parser.add_argument("--features", action="append", metavar="off,on",
                        help="feature sets, comma-separated or repeated: off (every optional step off), "
                             "default (the tree's defaults), on (API key, rate limits and quota, response "
                             "cache), platform (on + the resource allocator), tenants (platform without "
                             "metering and SLO tracking); see bench/overhead_targets.py")
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--rounds", type=int, default=1,
                        help="run each scenario this many times, targets alternating; report medians")
    parser.add_argument("--pin", action="store_true",
                        help="proxies on core 0 (taskset), engine simulator and load generator on core 1")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out even when installed")
    parser.add_argument("--sim-port", type=int, default=9001)
    parser.add_argument("--passthrough-port", type=int, default=8200)
    parser.add_argument("--litellm-port", type=int, default=8300)
    parser.add_argument("--inferlab-port", type=int, default=8100, help="the first; one more per extra target")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    try:
        args.features = _features(args.features)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if not args.scenarios or set(args.scenarios) - {s.name for s in SCENARIOS}:
        parser.error("--scenarios: choose from " + ", ".join(s.name for s in SCENARIOS))
    args.inferlab_ref = args.inferlab_ref or [Tree("inferlab", WORKTREE)]
    names = [tree.name for tree in args.inferlab_ref]
    if len(set(names)) != len(names):
        parser.error("--inferlab-ref: every NAME must differ")
    return args


def _measure(args: argparse.Namespace, stack: ExitStack) -> tuple[list[Target], Rounds, dict[str, Any]]:
    trees = [(tree, *resolve(tree)) for tree in args.inferlab_ref]  # a bad ref fails before anything starts
    pinning = Pinning.two_cores() if args.pin else Pinning()
    logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="overhead-")))
    launcher = Launcher(stack, logs, pinning)
    sim = start_simulator(launcher, args.sim_port)
    targets = [sim, *start_baselines(launcher, args, sim.base_url.removesuffix("/v1"))]
    targets += start_inferlab(launcher, trees, args.features, args.sim_port, args.inferlab_port)
    print("targets: " + ", ".join(f"{t.name} ({t.base_url})" for t in targets), flush=True)
    if pinning.engine is not None:
        os.sched_setaffinity(0, {int(pinning.engine)})  # the load generator shares the simulator's core
    rounds = asyncio.run(_run_scenarios(targets, sim, args.scale, args.scenarios, args.rounds))
    counters = {t.name: asyncio.run(gateway_counters(t)) for t in targets if t.info.get("features") == "on"}
    return targets, rounds, counters


def main() -> None:
    args = _parse_args()
    on_interrupt = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleaned up like a Ctrl-C
    try:
        with ExitStack() as stack:
            try:
                targets, rounds, counters = _measure(args, stack)
            finally:  # stop the children and remove the worktrees undisturbed by a second Ctrl-C
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:
        raise SystemExit("interrupted: every child stopped, every temporary worktree removed") from None
    signal.signal(signal.SIGINT, on_interrupt)
    names = [t.name for t in targets]
    results = {scenario: {name: median_row(rows) for name, rows in by_target.items()}
               for scenario, by_target in rounds.items()}
    table = markdown_table(results, names)
    ratios = goal_ratios(results, names)
    intervals = goal_intervals(rounds, names)
    ratios_md = ratio_table(ratios, intervals)
    print("\n" + table + ("\n\nagainst the pass-through:\n\n" + ratios_md if ratios_md else ""))
    for name, values in counters.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.0f}" for k, v in values.items()))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    out = args.out / f"overhead-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": stamp,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "scale": args.scale,
        "rounds": args.rounds,
        "pinned": args.pin,
        "features": args.features,
        "scenarios": [asdict(replace(s, num_prompts=max(10, int(s.num_prompts * args.scale))))
                      for s in SCENARIOS if s.name in args.scenarios],
        "targets": {t.name: t.base_url for t in targets},
        "target_details": {t.name: t.info for t in targets if t.info},
        "results": results,
        "ratios_vs_passthrough": ratios,
        "ratio_intervals_90": intervals,
        "per_round": {scenario: {name: [{key: row.get(key) for key in _ROUND_FIGURES} for row in rows]
                                 for name, rows in by_target.items()} for scenario, by_target in rounds.items()},
        "gateway_counters": counters,
        "table_markdown": table,
        "ratios_markdown": ratios_md,
    }
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwritten to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
