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
from inferlab.router.timeouts import prompt_tokens
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

    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

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
        prompt_tokens=prompt_tokens(body),
        max_tokens=int(max_tokens) * int(body.get("n") or 1) if isinstance(max_tokens, int) else None,
    )


class RouteToReplica:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, router: ModelRouter, failover: Failover) -> None:
        self._router = router
        self._failover = failover

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        pool = self._router.pool(call.pool or call.model, call.kind)
        routing = routing_request(call)
        finished = _Finished(self._failover.queues, pool, routing, call)
        call.defer(finished)  # a call that ends without an answer (error, client gone)
        inference = call.inference()
        try:
            if not call.stream:
                def answered(result: InferenceResponse) -> None:
                    self._account(call, result)
                    finished(None)

                if call.kind is RequestKind.EMBEDDING:
                    result = await self._failover.run(pool, routing, lambda backend: backend.embed(inference),
                                                      answered)
                else:
                    result = await self._failover.run(pool, routing, lambda backend: backend.complete(inference),
                                                      answered)
                return Reply(response=result)
            opened = await self._failover.open_stream(pool, routing, inference, call.first_sink)
        finally:
            call.queue_s = routing.queued_s
        if call.first_byte_s is None:  # else stamped when the first event was relayed
            call.first_byte_s = time.perf_counter() - call.started
        call.defer(_Release(pool, opened, finished))
        return Reply(first=opened.first, chunks=opened.chunks)

    @staticmethod
    def _account(call: Call, result: InferenceResponse) -> None:
        if result.usage is not None:
            usage = result.usage
            call.usage.engine_reported(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)


class _Finished:
    """Tell the scheduler the request's real usage once, as soon as it is known and before its slot
    is given back (a fair queue corrects the estimate it charged the tenant at dispatch, and must
    do so before it picks the next waiter)."""

    __slots__ = ("_call", "_done", "_pool", "_queues", "_routing")

    def __init__(self, queues: QueueManager, pool: BackendPool, routing: RoutingRequest, call: Call) -> None:
        self._queues = queues
        self._pool = pool
        self._routing = routing
        self._call = call
        self._done = False

    def __call__(self, ending: Ending | None) -> None:
        if not self._done:
            self._done = True
            self._queues.finished(self._pool, self._routing, *self._call.usage.settled())


class _Release:
    """Close the engine stream, settle the usage with the scheduler, and give the lease back with
    the ending's outcome."""

    __slots__ = ("_finished", "_opened", "_pool")

    def __init__(self, pool: BackendPool, opened: OpenStream, finished: _Finished) -> None:
        self._pool = pool
        self._opened = opened
        self._finished = finished

    async def __call__(self, ending: Ending) -> None:
        try:
            await self._opened.chunks.aclose()  # type: ignore[attr-defined]
        finally:
            self._finished(ending)
            self._pool.release(self._opened.lease, outcome_of(ending))

