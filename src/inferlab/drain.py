"""Graceful shutdown: stop taking work, let in-flight requests finish, then cut the rest cleanly.

Each inference request runs inside ``track()``. When the drain period ends, ``abort_all()``
cancels every tracked request's task once: the request's own code sees a ``TimeoutError`` at its
next await and ends properly (an SSE error event for a stream, a 503 otherwise) instead of being
killed mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from inferlab.cancellation import Canceller, current_canceller


class DrainController:
    def __init__(self) -> None:
        self.draining = False
        self._active: set[_Tracked] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def track(self) -> _Tracked:
        """``with drain.track():`` around the work of one request, in its task."""
        return _Tracked(self)

    def _enter(self, tracked: _Tracked) -> None:
        self._active.add(tracked)
        self._idle.clear()

    def _exit(self, tracked: _Tracked) -> None:
        self._active.discard(tracked)
        if not self._active:
            self._idle.set()

    def begin(self) -> None:
        self.draining = True

    async def wait_idle(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    def abort_all(self) -> int:
        for tracked in list(self._active):
            tracked.abort()
        return len(self._active)


class _Tracked:
    """One request's work (``with drain.track():``), cut short when the drain ends: ``abort``
    cancels its task once, and that cancellation leaves the block as ``TimeoutError``."""

    __slots__ = ("_canceller", "_drain")

    def __init__(self, drain: DrainController) -> None:
        self._drain = drain
        self._canceller: Canceller | None = None

    def __enter__(self) -> Self:
        self._canceller = current_canceller()
        self._drain._enter(self)
        return self

    def abort(self) -> None:
        if self._canceller is not None:
            self._canceller.fire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._drain._exit(self)
        canceller = self._canceller
        if canceller is not None and canceller.caused() and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
