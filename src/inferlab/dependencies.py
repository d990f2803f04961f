"""What the gateway's requests depend on besides its engines (the database, Redis), each with a
cheap, bounded, cached health check that ``/ready`` reports.

A dependency is checked at most once per ``ttl_s`` (concurrent probes share one check), and each
check is bounded by its own timeout, so probes every few seconds cost next to nothing and never hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

CHECK_TTL_S = 1.0


class DependencyCheck:
    """One dependency's health: ``probe`` raises when it is down."""

    def __init__(
        self,
        name: str,
        probe: Callable[[], Awaitable[object]],
        *,
        critical: bool,
        timeout_s: float,
        ttl_s: float = CHECK_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.critical = critical
        self._probe = probe
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._clock = clock
        self._up = False
        self._error: str | None = None
        self._checked_at: float | None = None
        self._pending: asyncio.Task[None] | None = None

    async def state(self) -> dict[str, Any]:
        if self._checked_at is None or self._clock() - self._checked_at >= self._ttl_s:
            if self._pending is None:
                self._pending = asyncio.get_running_loop().create_task(self._check())
            await asyncio.shield(self._pending)
        assert self._checked_at is not None
        state: dict[str, Any] = {
            "status": "up" if self._up else "down", "critical": self.critical,
            "checked_s_ago": round(self._clock() - self._checked_at, 3),
        }
        if self._error is not None:
            state["error"] = self._error
        return state

    async def _check(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._probe()
        except Exception as exc:  # noqa: BLE001 - whatever the probe raised, the dependency is down
            self._up, self._error = False, _reason(exc)
        else:
            self._up, self._error = True, None
        finally:
            self._checked_at = self._clock()
            self._pending = None

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending


def _reason(exc: BaseException) -> str:
    """A short, public reason: the class of the failure, never its text (hosts, credentials)."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return "timeout" if isinstance(cause, TimeoutError) else type(cause).__name__


class Dependencies:
    """What the gateway's requests depend on besides its engines; filled by the composition root."""

    def __init__(self) -> None:
        self.checks: list[DependencyCheck] = []

    def add(self, check: DependencyCheck) -> None:
        self.checks.append(check)

    async def states(self) -> dict[str, dict[str, Any]]:
        states = await asyncio.gather(*(check.state() for check in self.checks))
        return {check.name: state for check, state in zip(self.checks, states, strict=True)}

    async def close(self) -> None:
        for check in self.checks:
            await check.close()
