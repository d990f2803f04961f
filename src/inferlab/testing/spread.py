"""Long streams placed one on each replica of a model, for the end-to-end tests that kill one
replica mid-stream and check that only its stream ends in error.

Least-outstanding routing weighs an engine's scraped load, which is up to one scrape old, so
streams started at once can land two on one replica. Then they are dropped (the client leaves,
which cancels them at the engine) and started again, after a fresh scrape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import orjson

StartStream = Callable[[asyncio.Event], Coroutine[Any, Any, list[str]]]
"""Starts one stream; sets the event at its first event and returns its ``data:`` payloads."""


async def in_flight(http: aiohttp.ClientSession, url: str, model: str) -> dict[str, int]:
    """The gateway's requests in flight per replica of ``model`` (``/admin/backends``)."""
    async with http.get(url + "/admin/backends") as response:
        pools = orjson.loads(await response.read())["data"]
    return {replica["name"]: replica["in_flight"] for pool in pools if pool["model"] == model
            for replica in pool["replicas"]}


async def one_stream_per_replica(http: aiohttp.ClientSession, url: str, model: str, start: StartStream, *,
                                 attempts: int = 5, scrape_s: float = 1.0) -> list[asyncio.Task[list[str]]]:
    """As many running streams as ``model`` has replicas, one on each; ``AssertionError`` after
    ``attempts`` placements that doubled up."""
    replicas = len(await in_flight(http, url, model))
    for _ in range(attempts):
        flags = [asyncio.Event() for _ in range(replicas)]
        streams = [asyncio.create_task(start(flag)) for flag in flags]
        await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in flags)), 60)
        if set((await in_flight(http, url, model)).values()) == {1}:
            return streams
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        deadline = time.monotonic() + 30
        while any((await in_flight(http, url, model)).values()):
            assert time.monotonic() < deadline, "the dropped streams were not released"
            await asyncio.sleep(0.1)
        await asyncio.sleep(scrape_s)
    raise AssertionError(f"{attempts} tries never put one stream on each replica of {model}")
