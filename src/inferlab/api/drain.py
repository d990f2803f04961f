"""Graceful shutdown: stop taking work, let in-flight requests finish, then cut the rest cleanly.

Each inference request runs inside ``track()``, an ``asyncio.timeout`` with no deadline. When the
drain period ends, ``abort_all()`` moves every deadline to now: the request's own code sees a
``TimeoutError`` at its next await and ends properly (an SSE error event for a stream, a 503
otherwise) instead of being killed mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator


class DrainController:
    def __init__(self) -> None:
        self.draining = False
        self._active: set[asyncio.Timeout] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._active)

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[asyncio.Timeout]:
        async with asyncio.timeout(None) as deadline:
            self._active.add(deadline)
            self._idle.clear()
            try:
                yield deadline
            finally:
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
