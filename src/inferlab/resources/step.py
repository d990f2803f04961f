"""The allocation step: hold one sequence and ``prompt + max_tokens`` KV tokens of the pool for the
caller's tenant while the request runs; release it exactly once when the call ends.

A request within its tenant's share is admitted at once. One above it — the tenant at its limit,
or borrowing capacity others now hold — waits for capacity (``resources.queue_timeout_s``), then
gets 429 with the reason; one that could never fit its tenant's share gets 400. A pool whose
capacity is unknown is not allocated. While the allocator's store (Redis) does not answer, or
before a pool's terms could be stored, requests get 503 with Retry-After: capacity that cannot be
checked is not handed out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from inferlab.errors import InferLabError, InvalidRequest, RateLimited, ServiceUnavailable
from inferlab.pipeline import Call, Ending, Next, Reply
from inferlab.resources.leases import GrantLeases
from inferlab.resources.model import Grant, Refusal
from inferlab.types import RequestKind

RETRY_AFTER_S = 1.0
log = logging.getLogger("inferlab.resources")
_CODES = {"tenant_limit": "tenant_share_exhausted", "pool_full": "pool_full", "no_borrowing": "tenant_share_exhausted",
          "overbooked": "pool_overbooked"}


def kv_tokens(call: Call, default_max_tokens: int) -> int:
    """What the request may hold in the KV cache: its prompt (estimated) and every token it may generate."""
    if call.kind is RequestKind.EMBEDDING:
        return call.usage.prompt_estimate
    body = call.body
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    return call.usage.prompt_estimate + int(completion) * int(body.get("n") or 1)


class AllocateResources:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, leases: GrantLeases, pools: Collection[str], *, queue_timeout_s: float,
                 default_max_tokens: int) -> None:
        """``pools``: the allocated pools, read live (pools whose engines report their capacity join later)."""
        self._leases = leases
        self._pools = pools
        self._queue_timeout_s = queue_timeout_s
        self._default_max_tokens = default_max_tokens

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        if call.model not in self._pools:
            return await call_next(call)
        grant = await self._admit(call)
        call.defer(_Release(self._leases, grant))
        return await call_next(call)

    async def _admit(self, call: Call) -> Grant:
        tokens = kv_tokens(call, self._default_max_tokens)
        deadline = time.monotonic() + self._queue_timeout_s
        while True:
            try:
                decision = await self._leases.admit(call.model, call.caller.tenant_id, tokens, call.request_id)
            except InferLabError:
                raise
            except Exception as exc:  # noqa: BLE001 - the allocator's store (Redis) failed: fail closed, clearly
                log.warning("resource allocator unavailable", extra={"error": type(exc).__name__,
                                                                      "request_id": call.request_id})
                raise ServiceUnavailable("Capacity cannot be checked right now; try again shortly",
                                         retry_after=RETRY_AFTER_S) from None
            if isinstance(decision, Grant):
                return decision
            if decision.reason == "unknown_pool":  # its terms are not configured yet (the store was down)
                raise ServiceUnavailable("This model's capacity is not known yet; try again shortly",
                                         retry_after=RETRY_AFTER_S)
            if not decision.can_wait:
                raise InvalidRequest(decision.message, code="request_over_share", param="max_tokens")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _refused(decision)
            await self._leases.allocator.wait_for_capacity(call.model, min(left, 1.0), call.caller.tenant_id)


def _refused(refusal: Refusal) -> RateLimited:
    return RateLimited(refusal.message, retry_after=RETRY_AFTER_S, code=_CODES.get(refusal.reason, refusal.reason))


class _Release:
    __slots__ = ("_grant", "_leases")

    def __init__(self, leases: GrantLeases, grant: Grant) -> None:
        self._leases = leases
        self._grant = grant

    async def __call__(self, ending: Ending) -> None:
        await asyncio.shield(self._leases.release(self._grant))
