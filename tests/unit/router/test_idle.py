"""The mid-stream silence bound: only the engine's silence counts, and the stream is always closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inferlab.errors import UpstreamTimeout
from inferlab.router.idle import IdleBounded


class Engine:
    def __init__(self, gaps: list[float]) -> None:
        self.gaps = gaps
        self.closed = False

    async def chunks(self) -> AsyncIterator[int]:
        try:
            for index, gap in enumerate(self.gaps):
                await asyncio.sleep(gap)
                yield index
        finally:
            self.closed = True


async def test_silence_ends_the_stream_with_a_timeout() -> None:
    engine = Engine([0, 0, 60])
    stream = IdleBounded(engine.chunks(), 0.1, "r")
    assert [await anext(stream), await anext(stream)] == [0, 1]
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamTimeout):
        await anext(stream)
    assert asyncio.get_running_loop().time() - started < 0.5
    assert engine.closed  # the wait was cancelled: the engine's request ends
    await stream.aclose()


async def test_a_slow_client_is_not_the_engines_silence() -> None:
    engine = Engine([0.02] * 4)
    stream = IdleBounded(engine.chunks(), 0.1, "r")
    received = []
    async for chunk in stream:
        received.append(chunk)
        await asyncio.sleep(0.25)  # writing to a slow client
    assert received == [0, 1, 2, 3]
    await stream.aclose()


async def test_closing_an_unread_stream_closes_the_engines() -> None:
    engine = Engine([0, 0])
    chunks = engine.chunks()
    assert await anext(chunks) == 0  # the first chunk was read before the wrapper (failover does this)
    await IdleBounded(chunks, 0.1, "r").aclose()
    assert engine.closed


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    stream = IdleBounded(Engine([60]).chunks(), 30, "r")
    task = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.aclose()
