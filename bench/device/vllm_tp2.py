"""Device check (a machine with 2+ NVIDIA GPUs and vLLM installed): a vLLM tensor-parallel-2
group launched through InferLab's coordinator, then `inferlab bench` against it.

What it checks: the coordinator's vLLM command line starts a real TP=2 engine (both GPUs busy),
the group's health check sees it ready, the engine serves the OpenAI API with the key the
coordinator gave it (and refuses requests without it), and what it serves under load. Not run
on the CPU-only development machines; see bench/device/README.md.

    python bench/device/vllm_tp2.py --model Qwen/Qwen2.5-1.5B-Instruct --num-prompts 200 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import aiohttp

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.coordinator.distributed import DistributedCoordinator
from inferlab.coordinator.group import GroupTiming, NullGroupObserver
from inferlab.coordinator.launch import group_plan
from inferlab.coordinator.launch.common import Programs
from inferlab.coordinator.local import LocalProvider
from inferlab.coordinator.spec import DeploymentSpec, GroupParallelism, RankResources


def gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        raise SystemExit("no nvidia-smi: this check needs NVIDIA GPUs")
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.used", "--format=csv,noheader"],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    found = gpus()
    if len(found) < 2:
        raise SystemExit(f"tensor parallel 2 needs 2 GPUs; found {found}")
    vllm = shutil.which("vllm") or args.vllm
    spec = DeploymentSpec(name="device-check", model=args.model, engine="vllm",
                          parallel=GroupParallelism(tensor=2), resources=RankResources(gpus=2),
                          context=args.context, max_sequences=args.max_sequences, gpu_memory_utilization=0.85)
    key = secrets.token_urlsafe(24)
    logger = logging.getLogger("device-check")
    async with aiohttp.ClientSession() as session:
        coordinator = DistributedCoordinator({"local": LocalProvider(logger)}, session,
                                             timing=GroupTiming(startup_timeout_s=args.startup_timeout_s),
                                             observer=NullGroupObserver(), logger=logger)
        (group,) = coordinator.deploy(spec, "local", lambda name: group_plan(
            spec, name, target="process", programs=Programs(vllm=vllm), api_key=key))
        started = time.monotonic()
        await coordinator.start()
        try:
            if not await group.wait_ready(args.startup_timeout_s):
                raise SystemExit(f"vLLM did not become ready: {group.snapshot()['events'][-3:]} {group.last_error}")
            ready_s = time.monotonic() - started
            busy = gpus()
            async with session.get(group.url + "/v1/models") as response:
                refused = response.status  # no key: vLLM must refuse
            config = BenchmarkConfig(base_url=group.url, model=spec.name, api_key=key, num_prompts=args.num_prompts,
                                     concurrency=args.concurrency, max_tokens=args.max_tokens, stream=True,
                                     warmup=4, label="vllm-tp2")
            result = (await run_benchmark(config)).to_dict()
            return {"gpus_before": found, "gpus_serving": busy, "ready_s": round(ready_s, 1),
                    "without_key_status": refused, "group": group.snapshot(), "bench": result}
        finally:
            await coordinator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="Qwen/Qwen2.5-1.5B-Instruct")
    parser.add_argument("--vllm", default="vllm", help="the vllm program when it is not on PATH")
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--max-sequences", type=int, default=64)
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--startup-timeout-s", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
