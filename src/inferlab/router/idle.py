"""A stream whose engine falls silent mid-way is ended after ``idle_s``, cheaply.

An ``asyncio.timeout`` per chunk would cost a timer per token (~20 µs each); instead one timer per
stream checks, every ``idle_s`` or so, how long the stream has been waiting for the engine, and
cancels the wait once the engine has said nothing for ``idle_s``. Time the consumer spends writing
to a slow client is not counted: only the wait for the engine's next chunk is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from inferlab.errors import UpstreamTimeout

T = TypeVar("T")


class IdleBounded(Generic[T]):
    """``chunks``, ended by ``UpstreamTimeout`` when waiting for the next one takes ``idle_s``.
    ``aclose()`` closes ``chunks`` too, whether or not it was iterated."""

    __slots__ = ("_chunks", "_fired", "_handle", "_idle_s", "_loop", "_replica", "_since", "_task", "_waiting")

    def __init__(self, chunks: AsyncIterator[T], idle_s: float, replica: str) -> None:
        self._chunks = chunks
        self._idle_s = idle_s
        self._replica = replica
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._waiting = False
        self._fired = False

    def __aiter__(self) -> IdleBounded[T]:
        return self

    async def __anext__(self) -> T:
        if self._handle is None:  # the first wait: the task that iterates is known now
            self._task = asyncio.current_task()
            self._handle = self._loop.call_later(self._idle_s, self._check)
        self._since, self._waiting = self._loop.time(), True
        try:
            return await anext(self._chunks)
        except asyncio.CancelledError:
            self._stop()
            task = self._task
            if self._fired and task is not None and task.uncancel() == 0:
                raise UpstreamTimeout(f"engine {self._replica} sent nothing for {self._idle_s:g}s mid-stream") from None
            raise  # cancelled from elsewhere: the client left, or the drain ended
        except BaseException:
            self._stop()  # the end of the stream, or its failure
            raise
        finally:
            self._waiting = False

    def _check(self) -> None:
        due = self._since + self._idle_s
        if not self._waiting:
            self._handle = self._loop.call_later(self._idle_s, self._check)
        elif self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
        elif self._task is not None:
            self._fired = True
            self._task.cancel()

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    async def aclose(self) -> None:
        self._stop()
        await self._chunks.aclose()  # type: ignore[attr-defined]
