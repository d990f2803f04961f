"""Engine groups: recovery after a rank dies, and what splitting a model over RPC workers costs.

1. Recovery, local provider: a gateway with two SmolLM2 groups (a leader + 2 rpc-server workers
   each) under steady non-streamed load; SIGKILL one RPC worker; time from the kill to the group
   serving again (its state back to ready, and the gateway's own inferlab_engine_group_recovery_seconds),
   and the requests that failed meanwhile. Repeated --kills times.
2. Recovery, Ray provider: the same on a two-node Ray cluster on this machine (a head and a second
   `ray start --address` node): kill a rank, then lose the worker node (the group moves to the head).
3. Split vs single process: one llama-server holding the whole model vs the same build splitting
   it over 1 and 2 rpc-server workers, through the gateway (`inferlab bench`: tokens/s, TTFT,
   inter-token latency), with the planning toolkit's prediction beside each.

    python bench/recovery.py --kills 3 --num-prompts 24 --concurrency 2 --max-tokens 64 --out bench/results/recovery.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import aiohttp
import orjson

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.config import EngineSettings
from inferlab.coordinator.locate import built_llama_tool
from inferlab.planning.catalogue import load_catalogue
from inferlab.planning.deployment import resolve_deployment
from inferlab.planning.rpc import rpc_split_tokens_per_s, rpc_step_overhead_s
from inferlab.planning.specs import Interconnect, SourceRef
from inferlab.planning.throughput import estimate_throughput
from inferlab.testing.gateway_process import GatewayProcess, free_port
from inferlab.testing.ray_cluster import HEAD_IP, LocalRayCluster

MODEL_COMMON = {"backend": "llamacpp", "path": "embedded:smollm2", "context_size": 1024, "parallel": 2,
                "embeddings": False, "health": {"probe_interval_s": 0.5, "probe_timeout_s": 1.0, "ejection_base_s": 0.5}}


def _engines(ray: dict[str, Any] | None = None) -> dict[str, Any]:
    server = built_llama_tool(EngineSettings().cache_dir, "llama-server", variant="rpc")
    if not server.is_file():
        raise SystemExit("the RPC build is missing: inferlab engines build --tool rpc-server")
    engines = {"prefer": "llama-server", "llama_server_path": str(server), "threads": 1,
               "restart_backoff_initial_s": 0.2, "group_health_interval_s": 0.5}
    return {**engines, "ray": ray} if ray else engines


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        return orjson.loads(await response.read())


async def _load(http: aiohttp.ClientSession, url: str, model: str, stop: asyncio.Event, log: list[tuple[float, int]]) -> None:
    body = {"model": model, "max_tokens": 6, "messages": [{"role": "user", "content": "Say hi"}]}
    while not stop.is_set():
        async with http.post(url + "/v1/chat/completions", json=body) as response:
            await response.read()
            log.append((time.monotonic(), response.status))


async def _group(http: aiohttp.ClientSession, url: str, name: str) -> dict[str, Any]:
    groups = (await _get(http, url + "/admin/engines"))["data"]
    return dict(next(g for g in groups if g["name"] == name))


async def _recover_once(http: aiohttp.ClientSession, url: str, model: str, group: str, kill: Any) -> dict[str, Any]:
    stop, log = asyncio.Event(), []  # type: ignore[var-annotated]
    clients = [asyncio.create_task(_load(http, url, model, stop, log)) for _ in range(3)]
    await asyncio.sleep(2.0)
    before = await _group(http, url, group)
    killed = time.monotonic()
    what = kill(before)
    down_at = None
    while True:
        now = await _group(http, url, group)
        if now["state"] != "ready" and down_at is None:
            down_at = time.monotonic()
        if now["state"] == "ready" and now["restarts"] > before["restarts"]:
            break
        if time.monotonic() - killed > 180:
            raise SystemExit(f"{group} did not recover: {now['events'][-3:]}")
        await asyncio.sleep(0.05)
    serving = time.monotonic()
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*clients)
    during = [status for at, status in log if killed <= at <= serving + 0.5]
    return {"killed": what, "detected_s": round((down_at or serving) - killed, 3),
            "serving_again_s": round(serving - killed, 3), "requests_during": len(during),
            "failed_during": sum(1 for status in during if status != 200), "nodes_after": now["nodes"],
            "last_error": now["last_error"]}


def _kill_worker_rank(group: dict[str, Any]) -> str:
    rank = next(r for r in group["ranks"] if r["role"] == "worker")
    os.kill(rank["pid"], signal.SIGKILL)
    return f"rpc-server rank {rank['index']} (pid {rank['pid']}) on {rank['host']}"


async def local_recovery(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = {"models": [{"name": "g", "replicas": 2, "distributed": {"rpc_workers": 2}, **MODEL_COMMON}],
              "engines": _engines()}
    gateway = GatewayProcess(config).start(timeout=300)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            return [await _recover_once(http, gateway.url, "g", "g-0", _kill_worker_rank) for _ in range(args.kills)]
    finally:
        gateway.stop()


async def ray_recovery(args: argparse.Namespace) -> list[dict[str, Any]]:
    cluster = LocalRayCluster(Path(sys.executable).with_name("ray"), port=free_port(), head_cpus=4, worker_cpus=1)
    cluster.start()
    config = {"models": [{"name": "r", "replicas": 2, **MODEL_COMMON,
                          "distributed": {"provider": "ray", "rpc_workers": 1, "placement": "spread"}}],
              "engines": _engines({"address": cluster.address, "node_ip_address": HEAD_IP, "placement_timeout_s": 15})}
    gateway = GatewayProcess(config, env={"RAY_USAGE_STATS_ENABLED": "0"}).start(timeout=300)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            groups = (await _get(http, gateway.url + "/admin/engines"))["data"]
            spanning = next(g["name"] for g in groups if len(g["nodes"]) == 2)
            results = [await _recover_once(http, gateway.url, "r", spanning, _kill_worker_rank)
                       for _ in range(args.kills)]
            groups = (await _get(http, gateway.url + "/admin/engines"))["data"]
            spanning = next((g["name"] for g in groups if len(g["nodes"]) == 2), spanning)

            def lose_node(_: dict[str, Any]) -> str:
                cluster.kill_worker()
                return "the worker node (every process of it)"

            results.append(await _recover_once(http, gateway.url, "r", spanning, lose_node))
            return results
    finally:
        gateway.stop()
        cluster.stop()


def _echo(server: socket.socket) -> None:
    """Answer each length-prefixed message with one byte, as an RPC server acknowledges a command."""
    connection, _ = server.accept()
    with connection:
        while header := connection.recv(8, socket.MSG_WAITALL):
            size = int.from_bytes(header, "little")
            while size:
                size -= len(connection.recv(min(size, 1 << 20)))
            connection.sendall(b"k")


def loopback_link(rounds: int = 5000, payload: int = 4 << 20) -> Interconnect:
    """TCP over loopback as the planning toolkit's Interconnect: round trip and bandwidth measured
    here with blocking sockets (Python adds some microseconds that llama.cpp's C++ does not)."""
    server = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_echo, args=(server,), daemon=True)
    thread.start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(body: bytes) -> None:
        client.sendall(len(body).to_bytes(8, "little") + body)
        client.recv(1, socket.MSG_WAITALL)

    started = time.perf_counter()
    for _ in range(rounds):
        exchange(b"x")
    rtt = (time.perf_counter() - started) / rounds
    blob = b"y" * payload
    started = time.perf_counter()
    for _ in range(25):
        exchange(blob)
    bandwidth = 25 * payload / (time.perf_counter() - started - 25 * rtt) / 1e9
    client.close()
    thread.join(5)
    server.close()
    return Interconnect("loopback-tcp", "TCP over loopback (measured by bench/recovery.py)", "network",
                        bandwidth_gbps=bandwidth, latency_s=rtt / 2,
                        ref=SourceRef("measured on this machine, blocking sockets", "2026-12", "M"))


def predicted_split(workers: int, concurrency: int, link: Interconnect, measured_single: dict[str, Any] | None) -> dict[str, Any]:
    """The planning toolkit's figures: its own single-process speed (a DDR4 desktop CPU profile), the
    step time the split adds over the measured loopback link, and that added to the measured single process."""
    catalogue = load_catalogue()
    model = catalogue.model("smollm2-135m")
    d = resolve_deployment(catalogue, model="smollm2-135m", gpu="cpu-ddr4-3200", quant="Q4_1", memory_gb=16,
                           engine="llama.cpp")
    single = estimate_throughput(catalogue, d, prompt_tokens=64, output_tokens=64).tokens_per_s_per_stream
    added = rpc_step_overhead_s(model, workers, link, batch=concurrency)
    out = {"toolkit_tokens_per_s_per_stream": round(rpc_split_tokens_per_s(single, model, workers, link, concurrency)
                                                    if workers else single, 1),
           "added_ms_per_step": round(added * 1000, 3)}
    if measured_single is not None:
        out["itl_ms_from_measured_single"] = round(measured_single["median_itl_ms"] + added * 1000, 2)
    return out


async def split_cost(args: argparse.Namespace) -> list[dict[str, Any]]:
    models = [{"name": "single", **MODEL_COMMON}]
    models += [{"name": f"rpc{n}", **MODEL_COMMON, "distributed": {"rpc_workers": n}} for n in (1, 2)]
    gateway = GatewayProcess({"models": models, "engines": _engines()}).start(timeout=300)
    rows: list[dict[str, Any]] = []
    link = loopback_link()
    print(f"loopback: round trip {link.latency_s * 2e6:.1f} µs, {link.bandwidth_gbps:.2f} GB/s", flush=True)
    try:
        for model, workers in (("single", 0), ("rpc1", 1), ("rpc2", 2)):
            runs = []
            for _ in range(args.rounds):
                config = BenchmarkConfig(base_url=gateway.url + "/v1", model=model, num_prompts=args.num_prompts,
                                         concurrency=args.concurrency, max_tokens=args.max_tokens, stream=True,
                                         prompt_words=32, warmup=2, timeout=600, keepalive=False, label=model)
                runs.append((await run_benchmark(config)).to_dict())
            best = max(runs, key=lambda r: r["output_throughput"])
            if best["failed"]:
                print(f"{model}: {best['failed']} failed: {best['errors']}", flush=True)
            rows.append({"model": model, "rpc_workers": workers, "output_tokens_per_s": round(best["output_throughput"], 1),
                         "median_ttft_ms": round(best["median_ttft_ms"], 1), "median_itl_ms": round(best["median_itl_ms"], 2),
                         "failed": best["failed"],
                         "predicted": predicted_split(workers, args.concurrency, link, rows[0] if rows else None)})
            print(rows[-1], flush=True)
    finally:
        gateway.stop()
    rows.append({"link": {"round_trip_us": round(link.latency_s * 2e6, 1), "gb_per_s": round(link.bandwidth_gbps, 2)}})
    return rows


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
                           "cpus": os.cpu_count(), "args": vars(args)}
    if "local" in args.parts:
        out["local_recovery"] = await local_recovery(args)
        print("local", out["local_recovery"], flush=True)
    if "ray" in args.parts:
        out["ray_recovery"] = await ray_recovery(args)
        print("ray", out["ray_recovery"], flush=True)
    if "split" in args.parts:
        out["split"] = await split_cost(args)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["local", "ray", "split"], choices=["local", "ray", "split"])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
