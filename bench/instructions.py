"""Gateway overhead in instructions: every proxy under valgrind's callgrind, counted per request.

Wall-clock and CPU-time figures move with whatever else the machine runs; instruction counts do
not (callgrind counts the instructions the process executes, every thread, user space only — the
system calls' kernel work is not in them). So this is the overhead benchmark to run on a shared or
noisy machine, and the one to compare two trees with: the same requests, the same counts, run after
run. Targets as in ``bench/overhead.py`` (the engine simulator runs natively): the bare aiohttp
pass-through, and ``inferlab serve`` once per tree and feature set. For each scenario and target:
a warm-up, callgrind's counters zeroed, the measured requests, a dump — instructions per request.

  latency   no stream, one at a time   (--requests, default 200)
  stream    16 tokens a stream, 4 at once (--streams, default 100)

    python bench/instructions.py                                   # this tree, features off
    python bench/instructions.py --inferlab-ref v0.2=8f33aa7 --inferlab-ref now=WORKTREE \\
        --features off,on,platform

Slow: under callgrind a gateway starts in about two minutes and serves ~10 requests a second.
Writes bench/results/instructions-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from overhead_targets import (
    FEATURE_SETS,
    MODEL,
    PASSTHROUGH,
    WORKTREE,
    Launcher,
    Pinning,
    Target,
    Tree,
    parse_tree,
    resolve,
    slug,
    start_baselines,
    start_inferlab,
    start_simulator,
)

from inferlab.benchmark import BenchmarkConfig, run_benchmark

WARMUP = 20


def counted(dumps: Path, target: Target, since: set[Path]) -> int:
    """Dump ``target``'s counters (callgrind_control) and read the new dump's total."""
    subprocess.run(["callgrind_control", "--dump", str(target.pid)], capture_output=True, check=True, timeout=120)
    for _ in range(600):
        new = set(dumps.glob(f"{slug(target.name)}.{target.pid}.*")) - since
        for path in new:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    since.add(path)
                    return int(line.split()[1])
        time.sleep(0.1)
    raise RuntimeError(f"{target.name}: no callgrind dump appeared")


async def _load(target: Target, stream: bool, concurrency: int, num: int, seed: int) -> dict[str, Any]:
    config = BenchmarkConfig(
        base_url=target.base_url, model=MODEL, api_key=target.api_key, num_prompts=num, concurrency=concurrency,
        stream=stream, max_tokens=16, temperature=0.0, prompt_words=32, timeout=600, warmup=0,
        label=target.name, percentiles=(50.0,), seed=seed)
    return (await run_benchmark(config)).to_dict()


def measure(targets: list[Target], dumps: Path, requests: int, streams: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    seen: set[Path] = set()
    scenarios = (("latency", False, 1, requests), ("stream", True, 4, streams))
    for seed, (scenario, stream, concurrency, num) in enumerate(scenarios):
        results[scenario] = {}
        for target in targets:
            asyncio.run(_load(target, stream, concurrency, WARMUP, seed * 1000 + 1))
            subprocess.run(["callgrind_control", "--zero", str(target.pid)], capture_output=True, check=True,
                           timeout=120)
            row = asyncio.run(_load(target, stream, concurrency, num, seed * 1000 + 2))
            total = counted(dumps, target, seen)
            row["instructions"] = total
            row["instructions_per_request"] = total / num
            results[scenario][target.name] = row
            print(f"  {scenario:<8} {target.name:<22} {total / num / 1e6:8.3f} M instructions/request "
                  f"({row['completed']}/{num} ok)", flush=True)
    return results


def table(results: dict[str, dict[str, Any]], names: list[str]) -> str:
    lines = ["| target | latency: M instr/req | ÷ pass-through | stream: M instr/req | ÷ pass-through |",
             "|---|---|---|---|---|"]
    for name in names:
        cells = []
        for scenario in ("latency", "stream"):
            rows = results.get(scenario, {})
            if name not in rows:
                cells += ["—", "—"]
                continue
            mine = rows[name]["instructions_per_request"]
            base = rows.get(PASSTHROUGH, {}).get("instructions_per_request")
            cells += [f"{mine / 1e6:.3f}", f"{mine / base:.2f}" if base else "—"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inferlab-ref", action="append", type=parse_tree, default=None, metavar="NAME=REF")
    parser.add_argument("--features", default="off", help=f"comma-separated: {', '.join(FEATURE_SETS)}")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--sim-port", type=int, default=9021)
    parser.add_argument("--passthrough-port", type=int, default=8220)
    parser.add_argument("--inferlab-port", type=int, default=8120)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    features = [part.strip() for part in args.features.split(",") if part.strip()]
    if not features or set(features) - set(FEATURE_SETS):
        parser.error(f"--features: choose from {', '.join(FEATURE_SETS)}")
    trees = [(tree, *resolve(tree)) for tree in (args.inferlab_ref or [Tree("inferlab", WORKTREE)])]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # children stopped, worktrees removed, as on Ctrl-C
    started = time.monotonic()
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="instructions-")))
        dumps = logs / "callgrind"
        dumps.mkdir()
        launcher = Launcher(stack, logs, Pinning(), callgrind=dumps)
        sim = start_simulator(launcher, args.sim_port)
        baselines = argparse.Namespace(passthrough_port=args.passthrough_port, no_litellm=True, litellm_port=0)
        targets = start_baselines(launcher, baselines, sim.base_url.removesuffix("/v1"))
        targets += start_inferlab(launcher, trees, features, args.sim_port, args.inferlab_port)
        print("targets: " + ", ".join(t.name for t in targets), flush=True)
        results = measure(targets, dumps, args.requests, args.streams)
        names = [t.name for t in targets]
        details = {t.name: t.info for t in targets if t.info}
    print("\n" + table(results, names))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    out = args.out / f"instructions-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps({
        "date": stamp, "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                   "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "requests": args.requests, "streams": args.streams, "features": features, "targets": names,
        "target_details": details, "results": results, "seconds": time.monotonic() - started,
    }, option=orjson.OPT_INDENT_2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
