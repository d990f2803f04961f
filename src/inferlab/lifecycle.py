"""What starts with the gateway and stops with it: parts entered in order, left in reverse.

Builders register their parts here instead of reaching into the web application, so the same
services run under ``serve``, under a test's app, or in a CLI command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

Part = Callable[[], AbstractAsyncContextManager[None]]
STOP_GRACE_S = 5.0  # a background task cancelled at stop gets this long to finish, re-cancelled each second
log = logging.getLogger("inferlab")


class Lifecycle:
    def __init__(self) -> None:
        self._parts: list[Part] = []

    def add(self, part: Part) -> None:
        """``part()`` is entered at start (in registration order) and left at stop (in reverse)."""
        self._parts.append(part)

    def background(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """``run()`` as a task from start to stop (cancelled at stop, in reverse order)."""

        @contextlib.asynccontextmanager
        async def part() -> AsyncIterator[None]:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(run())
            try:
                yield
            finally:
                await _stop(task)

        self._parts.append(part)

    def on_stop(self, stop: Callable[[], Awaitable[None]]) -> None:
        """``stop()`` runs at stop, in reverse order of registration."""

        @contextlib.asynccontextmanager
        async def part() -> AsyncIterator[None]:
            try:
                yield
            finally:
                await stop()

        self._parts.append(part)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for part in self._parts:
                await stack.enter_async_context(part())
            yield


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it, bounded: a task that swallows a cancellation (asyncio's own
    ``wait_for`` could, before Python 3.12) is cancelled again each second, and after
    ``STOP_GRACE_S`` left behind with an error logged, so that one part never holds up the stop."""
    for _ in range(int(STOP_GRACE_S)):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
            return
    log.error("a background task did not stop when cancelled; left behind", extra={"task": task.get_name()})
