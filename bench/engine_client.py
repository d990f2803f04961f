"""CPU per request of the engine client against aiohttp's ClientSession, side by side in one run.

Starts the engine simulator (16 tokens per answer, no delay), then sends the same requests with
each client in turn, ``--rounds`` times alternating, and reads the process's CPU time around each
batch: the client's own cost per request (the simulator runs in another process). Streamed
requests read every block of the SSE body; whole ones read the body.

    python bench/engine_client.py --requests 2000 --concurrency 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson

from inferlab.backends.engine_client import EngineClient

ROOT = Path(__file__).resolve().parents[1]
Send = Callable[[bytes], Awaitable[int]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the engine simulator did not start")


def aiohttp_sender(session: aiohttp.ClientSession, url: str) -> Send:
    async def send(body: bytes) -> int:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            size = 0
            while block := await response.content.readany():
                size += len(block)
            return size

    return send


def lean_sender(client: EngineClient, url: str) -> Send:
    async def send(body: bytes) -> int:
        async with await client.request("POST", url, body, {"Content-Type": "application/json"}) as response:
            size = 0
            while block := await response.readany():
                size += len(block)
            return size

    return send


async def batch(send: Send, body: bytes, requests: int, concurrency: int) -> float:
    """CPU seconds of this process per request over ``requests`` sends."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            if await send(body) <= 0:
                raise RuntimeError("an empty answer")

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - started) / requests


async def measure(url: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    session = aiohttp.ClientSession()
    client = EngineClient()
    senders = {"aiohttp ClientSession": aiohttp_sender(session, url), "EngineClient": lean_sender(client, url)}
    try:
        for stream in (False, True):
            kind = "stream" if stream else "whole"
            body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello " * 32}],
                                 "max_tokens": 16, "stream": stream})
            for send in senders.values():
                await batch(send, body, 50, args.concurrency)  # warm-up: connections, caches
            for _ in range(args.rounds):
                for name, send in senders.items():
                    cpu = await batch(send, body, args.requests, args.concurrency)
                    results.setdefault(name, {}).setdefault(kind, []).append(cpu * 1e6)
                    print(f"  {kind:<6} {name:<22} {cpu * 1e6:7.1f} µs CPU/request", flush=True)
    finally:
        await session.close()
        await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    simulator = subprocess.Popen(
        [sys.executable, "-m", "inferlab.testing.simulator", "--host", "127.0.0.1", "--port", str(port),
         "--tokens", "16", "--model", "m"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_ready(f"http://127.0.0.1:{port}"))
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1/chat/completions", args))
    finally:
        simulator.terminate()
        simulator.wait(10)
    print(f"\n{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{args.requests} requests × {args.rounds} rounds, concurrency {args.concurrency}; median µs CPU/request\n")
    print("| client | whole | stream |\n|---|---|---|")
    for name, kinds in results.items():
        print(f"| {name} | {statistics.median(kinds['whole']):.0f} | {statistics.median(kinds['stream']):.0f} |")


if __name__ == "__main__":
    main()
