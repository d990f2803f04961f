"""The routing step: the innermost step of the chain, which takes a replica and calls its engine.

The replica lease is the router's: for a whole response ``Failover.run`` returns it before this
step returns; for a stream it is returned by the clean-up deferred here, with the outcome the
ending implies (success, the replica's fault, or neither), once the client has the whole stream,
an error ended it, or the client went away.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from inferlab.pipeline import Call, Ending, Next, Reply
from inferlab.router.failover import Failover, OpenStream, is_replica_fault
from inferlab.router.pool import BackendPool, ModelRouter
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.types import InferenceResponse, RequestKind

if TYPE_CHECKING:
    from inferlab.scheduler.protocol import QueueManager


def outcome_of(ending: Ending) -> Outcome:
    if ending.ok:
        return Outcome.SUCCESS
    if ending.error is not None and is_replica_fault(ending.error):
        return Outcome.FAILURE
    return Outcome.NEUTRAL


class ResolveModel:
    """Refuses an unknown model (404) before anything is charged for it."""

    def __init__(self, router: ModelRouter) -> None:
        self._router = router

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        self._router.pool(call.model, call.kind)
        return await call_next(call)


def routing_request(call: Call) -> RoutingRequest:
    """What the router and the scheduler know of the call: its class, tenant, weight, deadline, size."""
    body = call.body
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return RoutingRequest(
        body, call.session_key, call.priority, served_by=call.replicas, tenant=call.caller.tenant_id,
        weight=call.tier.spec.weight if call.tier is not None else 1.0, deadline=call.deadline,
        prompt_tokens=call.usage.prompt_estimate,
        max_tokens=int(max_tokens) * int(body.get("n") or 1) if isinstance(max_tokens, int) else None,
    )


class RouteToReplica:
    def __init__(self, router: ModelRouter, failover: Failover) -> None:
        self._router = router
        self._failover = failover

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        pool = self._router.pool(call.model, call.kind)
        routing = routing_request(call)
        call.defer(_Finished(self._failover.queues, pool, routing, call))
        inference = call.inference()
        if not call.stream:
            if call.kind is RequestKind.EMBEDDING:
                result = await self._failover.run(pool, routing, lambda backend: backend.embed(inference))
            else:
                result = await self._failover.run(pool, routing, lambda backend: backend.complete(inference))
            self._account(call, result)
            return Reply(response=result)
        opened = await self._failover.open_stream(pool, routing, inference)
        call.first_byte_s = time.perf_counter() - call.started
        call.defer(_Release(pool, opened))
        return Reply(first=opened.first, chunks=opened.chunks)

    @staticmethod
    def _account(call: Call, result: InferenceResponse) -> None:
        if result.usage is not None:
            call.usage.engine_reported(result.usage.prompt_tokens, result.usage.completion_tokens)


class _Finished:
    """Tell the scheduler the request's real usage once it is known (a fair queue corrects the
    estimate it charged the tenant when the request took its slot)."""

    __slots__ = ("_call", "_pool", "_queues", "_routing")

    def __init__(self, queues: QueueManager, pool: BackendPool, routing: RoutingRequest, call: Call) -> None:
        self._queues = queues
        self._pool = pool
        self._routing = routing
        self._call = call

    def __call__(self, ending: Ending) -> None:
        self._queues.finished(self._pool, self._routing, *self._call.usage.settled())


class _Release:
    """Close the engine stream and give the lease back with the ending's outcome."""

    __slots__ = ("_opened", "_pool")

    def __init__(self, pool: BackendPool, opened: OpenStream) -> None:
        self._pool = pool
        self._opened = opened

    async def __call__(self, ending: Ending) -> None:
        try:
            await self._opened.chunks.aclose()  # type: ignore[attr-defined]
        finally:
            self._pool.release(self._opened.lease, outcome_of(ending))

