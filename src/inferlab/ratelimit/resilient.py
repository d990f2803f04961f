"""Redis failure policy: a limiter that never waits on Redis longer than ``timeout_s``.

While Redis fails (error or timeout), each limit type follows its policy: ``fail-open-local``
enforces ``limit ÷ expected_replicas`` in this replica's memory; ``fail-closed`` answers 503 with
``Retry-After``. After a failure Redis is tried again every ``retry_s`` (so an outage costs one
timeout per ``retry_s``, not one per request); the first success resumes normal behaviour.
Settlement goes to both: the local limiter (a no-op for a lease it never admitted) and, while Redis
answers, Redis (a no-op for a lease admitted locally). Charges held in Redis that cannot be settled
during an outage expire with their window or lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from inferlab.config import RateLimitFailure
from inferlab.errors import ServiceUnavailable
from inferlab.ratelimit.memory import MemoryRateLimiter
from inferlab.ratelimit.protocol import Charge, Decision, RateLimiter


class ResilientLimiter:
    def __init__(
        self,
        primary: RateLimiter,
        errors: tuple[type[BaseException], ...],
        failure: RateLimitFailure,
        *,
        expected_replicas: int,
        timeout_s: float,
        retry_s: float,
        logger: logging.Logger,
        on_fallback: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._errors: tuple[type[BaseException], ...] = (TimeoutError, OSError, *errors)
        self._failure = failure
        self._replicas = expected_replicas
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._log = logger
        self._on_fallback = on_fallback or (lambda policy: None)
        self._clock = clock
        self._local = MemoryRateLimiter()
        self._down_until = 0.0

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._down_until:
            self._log.warning("redis unavailable during %s (%s): rate limits follow the failure policy",
                              what, type(exc).__name__, extra={"during": what, "error": repr(exc)})
        self._down_until = self._clock() + self._retry_s

    async def acquire(self, lease: str, charges: Sequence[Charge]) -> Decision:
        if self._clock() >= self._down_until:
            try:
                async with asyncio.timeout(self._timeout_s):
                    decision = await self._primary.acquire(lease, charges)
            except self._errors as exc:
                self._failed("acquire", exc)
            else:
                if self._down_until:
                    self._log.warning("redis is back: rate limits are shared again")
                    self._down_until = 0.0
                return decision
        return self._fallback(lease, charges)

    def _policy_of(self, kind: str) -> str:
        return str(getattr(self._failure, "quota" if kind.startswith("quota") else kind))

    def _fallback(self, lease: str, charges: Sequence[Charge]) -> Decision:
        closed = [c.kind for c in charges if self._policy_of(c.kind) == "fail-closed"]
        if closed:
            self._on_fallback("fail-closed")
            raise ServiceUnavailable(
                f"Rate limiting is unavailable ({closed[0]} limits fail closed); try again shortly",
                code="ratelimit_unavailable", retry_after=self._retry_s,
            )
        self._on_fallback("fail-open-local")
        share = [replace(c, limit=c.limit // self._replicas if c.limit else 0) for c in charges]
        return self._local.acquire_now(lease, share)

    async def settle(self, lease: str, amounts: Sequence[tuple[str, int]]) -> None:
        self._local.settle_now(lease, amounts)
        if self._clock() < self._down_until:
            return  # Redis is down: the charges expire with their window or lease
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._primary.settle(lease, amounts)
        except self._errors as exc:
            self._failed("settle", exc)

    async def renew(self, held: Sequence[tuple[str, str, float]]) -> int:
        """Both, like settlement: a lease lives in one of them. While Redis is down, leases held
        there are not renewed; they expire one TTL later (concurrency then follows the policy)."""
        alive = self._local.renew_now(held)
        if self._clock() < self._down_until:
            return alive
        try:
            async with asyncio.timeout(self._timeout_s):
                alive += await self._primary.renew(held)
        except self._errors as exc:
            self._failed("renew", exc)
        return alive

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._local.aclose()
