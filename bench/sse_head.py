"""A stream's head and first event: written apart (aiohttp's default) or together, side by side.

The gateway's first-token path ends with the response head and the first event. aiohttp's
``StreamResponse`` writes the head in ``prepare`` (one system call) and the event in ``write``
(another); ``SseResponse`` holds the head back and sends both in one write. This serves the same
SSE answer both ways from one aiohttp server, in alternating rounds, and times inside the handler
what each way costs: from building the response to the first event written (the end of the body is
not counted). The client is a separate process, so its work is not in the figures.

    python bench/sse_head.py --requests 3000 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.api.sse import SSE_HEADERS, ChunkWriter, SseResponse

EVENT = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n')
WARMUP = 200


class HeadAtPrepare(SseResponse):
    """aiohttp's default: the head is written by ``prepare``."""

    _send_headers_immediately = True


async def _serve(port: int, timings: dict[str, list[float]]) -> web.AppRunner:
    def handler(kind: type[SseResponse], name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            response = kind(headers={**SSE_HEADERS, "x-request-id": "0123456789abcdef"})
            await response.prepare(request)
            await ChunkWriter(request, response).write(EVENT)
            timings[name].append(time.perf_counter() - started)
            await response.write_eof()
            return response
        return handle

    app = web.Application()
    app.router.add_post("/apart", handler(HeadAtPrepare, "apart"))
    app.router.add_post("/together", handler(SseResponse, "together"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _client(port: int, path: str, requests: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            async with session.post(f"http://127.0.0.1:{port}{path}", data=b"{}") as answer:
                await answer.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per way and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--port", type=int, default=8390)
    parser.add_argument("--client", metavar="PATH", help=argparse.SUPPRESS)  # the client process's own mode
    args = parser.parse_args()
    if args.client:
        asyncio.run(_client(args.port, args.client, args.requests))
        return
    asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> None:
    timings: dict[str, list[float]] = {"apart": [], "together": []}
    runner = await _serve(args.port, timings)
    medians: dict[str, list[float]] = {"apart": [], "together": []}
    try:
        for round_ in range(args.rounds):
            for name in ("apart", "together") if round_ % 2 == 0 else ("together", "apart"):
                timings[name].clear()
                client = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--client", f"/{name}", "--requests", str(args.requests + WARMUP),
                    "--port", str(args.port))
                if await client.wait() != 0:
                    raise SystemExit("the client failed")
                medians[name].append(statistics.median(timings[name][WARMUP:]) * 1e6)
    finally:
        await runner.cleanup()
    print(f"{platform.platform()}, Python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
          f"{args.requests} requests per way and round, {args.rounds} rounds")
    for name, values in medians.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"{name:<9} head and first event: median {statistics.median(values):5.1f} µs (rounds: {rounds})")


if __name__ == "__main__":
    main()
