"""A stream whose engine falls silent mid-way is ended after ``idle_s``, cheaply.

An ``asyncio.timeout`` per chunk would cost a timer per token (~20 µs each); instead one timer per
stream (``IdleWatch``) checks, every ``idle_s`` or so, how long the stream has been waiting for the
engine, and cancels the wait once the engine has said nothing for ``idle_s``. Time the consumer
spends writing to a slow client is not counted: only the wait for the engine's next chunk is.

A stream that can report its own waits (``IdleWatchable``: the OpenAI-compatible engine stream)
is handed the watch and calls it around each read; any other stream is wrapped in
``IdleBounded``, which calls it around each ``anext``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

from inferlab.errors import UpstreamTimeout

T = TypeVar("T")


class IdleWatch:
    """The idle bound of one stream: ``waiting()`` before each wait for the engine, ``received()``
    after it, ``cancelled()`` to learn what a cancellation of that wait means, ``stop()`` at the end."""

    __slots__ = ("_fired", "_handle", "_idle_s", "_loop", "_replica", "_since", "_task", "_waiting")

    def __init__(self, idle_s: float, replica: str) -> None:
        self._idle_s = idle_s
        self._replica = replica
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._waiting = False
        self._fired = False

    def waiting(self) -> None:
        if self._handle is None:  # the first wait: the task that iterates is known now
            self._task = asyncio.current_task()
            self._handle = self._loop.call_later(self._idle_s, self._check)
        self._since, self._waiting = self._loop.time(), True

    def received(self) -> None:
        self._waiting = False

    def heard(self) -> None:
        """The engine sent something that went past the wait (a chunk pushed to the client): the
        silence counts from now."""
        self._since = self._loop.time()

    def cancelled(self) -> BaseException:
        """What to raise for a cancellation of the wait: ``UpstreamTimeout`` when this watch fired
        it, else the cancellation itself (the client left, or the drain ended)."""
        self._waiting = False
        self.stop()
        task = self._task
        if self._fired and task is not None and task.uncancel() == 0:
            return UpstreamTimeout(f"engine {self._replica} sent nothing for {self._idle_s:g}s mid-stream")
        return asyncio.CancelledError()

    def _check(self) -> None:
        due = self._since + self._idle_s
        if not self._waiting:
            self._handle = self._loop.call_later(self._idle_s, self._check)
        elif self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
        elif self._task is not None:
            self._fired = True
            self._task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class IdleWatchable(Protocol):
    """A stream that calls an ``IdleWatch`` around its own waits for the engine."""

    def watch_idle(self, watch: IdleWatch) -> None: ...


class IdleBounded(Generic[T]):
    """``chunks``, ended by ``UpstreamTimeout`` when waiting for the next one takes ``idle_s``.
    ``aclose()`` closes ``chunks`` too, whether or not it was iterated."""

    __slots__ = ("_chunks", "_watch")

    def __init__(self, chunks: AsyncIterator[T], idle_s: float, replica: str) -> None:
        self._chunks = chunks
        self._watch = IdleWatch(idle_s, replica)

    def __aiter__(self) -> IdleBounded[T]:
        return self

    async def __anext__(self) -> T:
        watch = self._watch
        watch.waiting()
        try:
            chunk = await anext(self._chunks)
        except asyncio.CancelledError:
            raised = watch.cancelled()
            if isinstance(raised, asyncio.CancelledError):
                raise
            raise raised from None
        except BaseException:
            watch.stop()  # the end of the stream, or its failure
            raise
        watch.received()
        return chunk

    async def aclose(self) -> None:
        self._watch.stop()
        await self._chunks.aclose()  # type: ignore[attr-defined]


def idle_bounded(chunks: AsyncIterator[T], idle_s: float, replica: str) -> AsyncIterator[T]:
    """``chunks`` with the idle bound: watched from inside when it can be, else wrapped."""
    watch_idle = getattr(chunks, "watch_idle", None)  # ``IdleWatchable``, without a protocol check per stream
    if watch_idle is not None:
        watch_idle(IdleWatch(idle_s, replica))
        return chunks
    return IdleBounded(chunks, idle_s, replica)
