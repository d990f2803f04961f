"""Every store call bounded, and a database outage known to the whole process.

``StoreGuard.call`` runs one store operation in a task of its own and waits at most ``timeout_s``
for it. A database that does not answer, refuses connections or drops them becomes
``StoreUnavailable`` (503 + ``Retry-After``): never a 500, never a wait longer than the timeout.
Errors that say a statement was wrong (a constraint, bad SQL) pass through unchanged.

Why a task of its own: SQLAlchemy shields its connection cleanup from cancellation (an asyncpg
connection interrupted mid-query is closed gracefully, with a 2 s timeout of its own), so a
timeout around the caller's awaits would wait out that cleanup as well. On timeout the task is
cancelled and left to finish its cleanup in the background.

Once a call has failed so, the store is *down*: calls fail at once, without touching the
database, and one background probe (``SELECT 1``) finds out when it is back: at once, then every
``retry_s``. An outage costs the calls in flight one timeout each, then nothing per request; a
call that only took too long on a database that answers (a slow statement, a busy event loop)
costs the calls of one probe's round trip, not ``retry_s`` of 503s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import exc as sa

from inferlab.errors import StoreUnavailable

T = TypeVar("T")
P = ParamSpec("P")

_OUTAGES: tuple[type[BaseException], ...] = (
    TimeoutError, OSError, sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError,
)


def is_outage(exc: BaseException) -> bool:
    """Does ``exc`` say the database cannot be used now (rather than that a statement was wrong)?"""
    if isinstance(exc, _OUTAGES):
        return True
    # a bare DBAPIError is a failed connect (unknown database or role, too many connections...)
    return isinstance(exc, sa.DBAPIError) and (exc.connection_invalidated or type(exc) is sa.DBAPIError)


class StoreGuard:
    def __init__(
        self,
        ping: Callable[[], Coroutine[Any, Any, object]],
        *,
        timeout_s: float,
        retry_s: float,
        logger: logging.Logger | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._ping = ping
        self._log = logger or logging.getLogger("inferlab.store")
        self._down_since: float | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def unavailable(self) -> StoreUnavailable:
        return StoreUnavailable("The database is unavailable; try again shortly", retry_after=max(1.0, self.retry_s))

    async def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` bounded by ``timeout_s``; ``StoreUnavailable`` when the database fails it."""
        if self.down:
            work.close()
            raise self.unavailable()
        try:
            return await self._bounded(work)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._failed(exc)
            raise self.unavailable() from exc

    async def _bounded(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.get_running_loop().create_task(work)
        try:
            done, _ = await asyncio.wait((task,), timeout=self.timeout_s)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise TimeoutError(f"the database did not answer within {self.timeout_s:g}s")
        return task.result()

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned call's error was already answered as a 503

    def _failed(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self._log.warning("database unavailable: store calls answer 503 until it is back",
                          extra={"error": repr(exc)})
        self._recovery = asyncio.get_running_loop().create_task(self._recover(), name="inferlab-store-recovery")

    async def _recover(self) -> None:
        """Probe at once, then every ``retry_s``: a call that only ran past the bound (a slow
        statement, a busy event loop) while the database answers ends the outage in one round trip."""
        while True:
            try:
                await self._bounded(self._ping())
            except Exception as exc:  # noqa: BLE001 - any failed probe means: still down, probe again
                if not is_outage(exc):
                    self._log.warning("database probe failed", exc_info=True)
                await asyncio.sleep(self.retry_s)
                continue
            break
        down_s = time.monotonic() - (self._down_since or time.monotonic())
        self._down_since = None
        self._recovery = None
        self._log.warning("database is back", extra={"down_s": round(down_s, 3)})

    async def close(self) -> None:
        """Stop probing; give abandoned calls a moment to finish their cleanup."""
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.wait((self._recovery,))
            self._recovery = None
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=self.timeout_s + 3.0)


class _Guarded(Protocol):
    @property
    def guard(self) -> StoreGuard: ...


class _Store(Protocol):
    @property
    def _db(self) -> _Guarded: ...


S = TypeVar("S", bound=_Store)


RACE_ATTEMPTS = 3  # how often a store call runs while a unique key refuses its write


def bounded(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """A store method whose every call goes through its database's ``StoreGuard``.

    A method that reads a row by its key and inserts it when it is missing (an upsert, a create
    that answers "exists") can lose a race: a concurrent call inserts that row in between, and the
    key refuses the second insert (``IntegrityError``). The lost call is run again: it then finds the
    row and answers as if it had come second (replaced, the same one found, or its own
    ``Conflict``). So a store method must be safe to run again after an ``IntegrityError``: one
    transaction (rolled back by the error), or idempotent steps. An ``IntegrityError`` that is still
    there after ``RACE_ATTEMPTS`` runs is no race: it is raised."""

    @functools.wraps(method)
    async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        guard = self._db.guard
        for _ in range(RACE_ATTEMPTS - 1):
            try:
                return await guard.call(method(self, *args, **kwargs))
            except sa.IntegrityError:
                continue
        return await guard.call(method(self, *args, **kwargs))

    return call
