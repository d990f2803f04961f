"""Graceful shutdown: stop taking work, let in-flight requests finish, then cut the rest cleanly.

Each inference request runs inside ``track()``, an ``asyncio.timeout`` with no deadline. When the
drain period ends, ``abort_all()`` moves every deadline to now: the request's own code sees a
``TimeoutError`` at its next await and ends properly (an SSE error event for a stream, a 503
otherwise) instead of being killed mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class DrainController:
    def __init__(self) -> None:
        self.draining = False
        self._active: set[asyncio.Timeout] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def track(self) -> _Tracked:
        """``async with drain.track():`` around the work of one request."""
        return _Tracked(self)

    def _enter(self, deadline: asyncio.Timeout) -> None:
        self._active.add(deadline)
        self._idle.clear()

    def _exit(self, deadline: asyncio.Timeout) -> None:
        self._active.discard(deadline)
        if not self._active:
            self._idle.set()

    def begin(self) -> None:
        self.draining = True

    async def wait_idle(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    def abort_all(self) -> int:
        now = asyncio.get_running_loop().time()
        for deadline in list(self._active):
            deadline.reschedule(now)
        return len(self._active)


class _Tracked:
    """A plain class rather than ``@asynccontextmanager``: this runs on every request."""

    __slots__ = ("_deadline", "_drain")

    def __init__(self, drain: DrainController) -> None:
        self._drain = drain
        self._deadline = asyncio.timeout(None)

    async def __aenter__(self) -> asyncio.Timeout:
        deadline = await self._deadline.__aenter__()
        self._drain._enter(deadline)
        return deadline

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._drain._exit(self._deadline)
        await self._deadline.__aexit__(exc_type, exc, tb)  # never suppresses: it raises TimeoutError or returns
