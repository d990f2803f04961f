"""What starts with the gateway and stops with it: parts entered in order, left in reverse.

Builders register their parts here instead of reaching into the web application, so the same
services run under ``serve``, under a test's app, or in a CLI command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

Part = Callable[[], AbstractAsyncContextManager[None]]


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
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

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
