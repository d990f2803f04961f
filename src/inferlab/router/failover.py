"""Attempts, retries and failover: what happens between "route this" and the first byte.

A request that fails before its first byte reaches the client is retried on another replica,
within the per-request attempt limit and the pool's retry budget; once a byte is out it is never
retried (a stream cut later ends with one SSE error event, in the API layer). Each attempt's
outcome is reported to the pool (breaker, EWMA).

Which failures are the replica's fault (and so retried): ``UpstreamError`` (connection errors,
5xx), ``UpstreamTimeout``, and ``ServiceUnavailable`` raised by a backend (a managed engine that
is restarting). An engine's 4xx (``EngineRejected``) is the request's fault: not retried.
Two engine answers are retried elsewhere without counting against the replica's breaker: a 429
(``EngineBusy``: the replica is busy, not broken; with no other replica the client gets the 429)
and a refusal of the gateway's credentials (``EngineMisconfigured``: the replica is marked
misconfigured and leaves routing until a re-check).

Every attempt is bounded (``timeouts.py``): until the first chunk of a stream, the whole answer
otherwise, and the silence between two chunks of a stream — so a hung replica costs one bounded
wait, then the request fails over (or ends with 504 when no replica is left).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from inferlab.cancellation import current_canceller
from inferlab.errors import (
    EngineBusy,
    EngineMisconfigured,
    EngineRejected,
    InferLabError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from inferlab.router.idle import idle_bounded
from inferlab.router.pool import BackendPool, Lease, NoReplicaAvailable
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.router.timeouts import attempt_deadlines
from inferlab.types import FirstSink, InferenceBackend, InferenceRequest, StreamChunk

if TYPE_CHECKING:
    from inferlab.scheduler.protocol import QueueManager

T = TypeVar("T")


def is_replica_fault(exc: BaseException) -> bool:
    """Does this failure count against the replica (its breaker)?"""
    if isinstance(exc, (EngineRejected, EngineMisconfigured)):
        return False
    return isinstance(exc, (UpstreamError, UpstreamTimeout)) or (
        isinstance(exc, ServiceUnavailable) and not isinstance(exc, NoReplicaAvailable)
    )


@dataclass(slots=True)
class OpenStream:
    """A stream whose first chunk arrived: the caller forwards it, then releases the lease."""

    lease: Lease
    first: StreamChunk | None
    chunks: AsyncIterator[StreamChunk]


class Failover:
    """The attempt loop; each pool brings its own ``RetryPolicy`` and ``RetryBudget``, and every
    attempt takes its slot through ``queues`` (waiting its turn when the pool is full)."""

    def __init__(self, queues: QueueManager) -> None:
        self._queues = queues

    @property
    def queues(self) -> QueueManager:
        return self._queues

    async def _next_lease(self, pool: BackendPool, request: RoutingRequest, tried: frozenset[str],
                          last: InferLabError | None) -> Lease:
        try:
            if last is not None:
                if not pool.retry_budget.try_spend():
                    pool.observer.retried(pool.model, "budget_exhausted")
                    raise last
                pool.observer.retried(pool.model, "retry")
            try:
                return await self._queues.acquire(pool, request, tried)
            except NoReplicaAvailable:
                if last is not None:
                    raise last from None  # no other replica to fail over to: the real error is the last one
                raise
        finally:
            last = None  # the error's traceback holds this frame: no cycle through it (see ``run``)

    async def run(self, pool: BackendPool, request: RoutingRequest,
                  call: Callable[[InferenceBackend], Awaitable[T]],
                  answered: Callable[[T], None] | None = None) -> T:
        """``call(backend)`` on a replica, failing over before the answer exists. ``answered(result)``
        runs before the slot is given back (the scheduler learns the real usage before it picks the
        next waiter)."""
        pool.retry_budget.deposit()
        timeout_s = attempt_deadlines(pool.retry_policy, pool.timeouts, request.body, request.prompt_tokens or None).whole_s
        tried: frozenset[str] = frozenset()
        last: InferLabError | None = None
        try:
            for _ in range(max(1, pool.retry_policy.max_attempts)):
                lease = await self._next_lease(pool, request, tried, last)
                try:
                    result = await self._attempt(lease, call(lease.backend), timeout_s)
                except InferLabError as exc:
                    if not self._give_back_failed(pool, lease, exc):
                        raise
                    tried, last = tried | {lease.replica.name}, exc
                    continue
                except BaseException:
                    pool.release(lease, Outcome.NEUTRAL)
                    raise
                lease.ttfb_s = pool.clock() - lease.started
                if answered is not None:
                    answered(result)
                pool.release(lease, Outcome.SUCCESS)
                return result
            assert last is not None
            raise last
        finally:
            # The error raised from here has this frame in its traceback: holding the error in it
            # too would make a reference cycle, and the call, its request and its response would
            # wait for the garbage collector instead of being freed as the request ends.
            last = None

    async def open_stream(self, pool: BackendPool, request: RoutingRequest, inference: InferenceRequest,
                          first_sink: FirstSink | None = None) -> OpenStream:
        """Start a stream on a replica and wait for its first chunk, failing over until then.
        ``first_sink``: offered the first event as it arrives (``FirstSink``); once it was sent, a
        failure is the stream's, not the replica's to hand over."""
        pool.retry_budget.deposit()
        deadlines = attempt_deadlines(pool.retry_policy, pool.timeouts, request.body, request.prompt_tokens or None)
        tried: frozenset[str] = frozenset()
        last: InferLabError | None = None
        try:
            for _ in range(max(1, pool.retry_policy.max_attempts)):
                lease = await self._next_lease(pool, request, tried, last)
                chunks = lease.backend.stream(inference)
                if first_sink is not None and (relay_first := getattr(chunks, "relay_first", None)) is not None:
                    relay_first(first_sink)
                try:
                    first = await self._attempt(lease, anext(chunks, None), deadlines.first_byte_s)
                except InferLabError as exc:
                    await chunks.aclose()  # type: ignore[attr-defined]
                    if first_sink is not None and first_sink.sent:  # the client has its first event: too late to fail over
                        pool.release(lease, Outcome.FAILURE if is_replica_fault(exc) else Outcome.NEUTRAL)
                        raise
                    if not self._give_back_failed(pool, lease, exc):
                        raise
                    tried, last = tried | {lease.replica.name}, exc
                    continue
                except BaseException:
                    await chunks.aclose()  # type: ignore[attr-defined]
                    pool.release(lease, Outcome.NEUTRAL)
                    raise
                lease.ttfb_s = pool.clock() - lease.started
                return OpenStream(lease, first, idle_bounded(chunks, deadlines.idle_s, lease.replica.name))
            assert last is not None
            raise last
        finally:
            last = None  # no cycle through this frame (see ``run``)

    @staticmethod
    def _give_back_failed(pool: BackendPool, lease: Lease, exc: InferLabError) -> bool:
        """Return a failed attempt's slot; whether another replica may do better (else the caller
        re-raises ``exc``)."""
        if isinstance(exc, EngineMisconfigured):
            lease.replica.misconfigured(exc.reason, pool.clock())
            pool.release(lease, Outcome.NEUTRAL)
            return True
        if isinstance(exc, EngineBusy):
            pool.release(lease, Outcome.NEUTRAL)
            return True
        if not is_replica_fault(exc):
            pool.release(lease, Outcome.NEUTRAL)
            return False
        pool.release(lease, Outcome.FAILURE)
        return True

    @staticmethod
    async def _attempt(lease: Lease, work: Awaitable[T], timeout_s: float | None) -> T:
        """``work`` within ``timeout_s``: one timer that cancels this task (what ``asyncio.timeout``
        does, without its context manager's objects and calls on every request)."""
        if timeout_s is None:
            return await work
        canceller = current_canceller()
        timer = asyncio.get_running_loop().call_later(timeout_s, canceller.fire)
        try:
            return await work
        except asyncio.CancelledError:
            if canceller.caused():  # ours, and nobody else's on top of it
                raise UpstreamTimeout(f"engine {lease.replica.name} did not answer within {timeout_s:g}s") from None
            raise  # the client left, or an outer deadline (the drain)
        finally:
            timer.cancel()

