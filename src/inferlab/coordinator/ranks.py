"""Readiness probes for a starting rank: a worker that listens, a leader that answers its health check."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

POLL_S = 0.1


async def wait_tcp(host: str, port: int) -> None:
    """Return once something accepts connections on ``host:port`` (the caller bounds the wait)."""
    while True:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await asyncio.sleep(POLL_S)


async def wait_http(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    """Return once ``url`` answers 200 (the caller bounds the wait)."""
    timeout = aiohttp.ClientTimeout(total=2)
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=timeout, headers=headers) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(POLL_S * 2)
