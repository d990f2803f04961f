"""The rate-limit step: reserve before routing, settle exactly once when the call ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from inferlab.pipeline import Call, Ending, Next, Reply
from inferlab.ratelimit.admission import Admission, Ticket
from inferlab.ratelimit.grants import effective, overrides_of
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import Overrides
from inferlab.types import Caller, RequestKind

StoredLimits = Callable[[Identity], Awaitable[Mapping[str, Overrides]]]
MAX_TIERS_KEPT = 4096  # compiled tiers whose default limits are kept (one per tenant with overrides, per change)


def identity_of(caller: Caller) -> Identity:
    """Who a request counts against, in the limiter's terms."""
    subject = caller.subject
    return Identity(subject, caller.user_id or subject, caller.tenant_id)


def reserved_tokens(call: Call, default_max_tokens: int) -> tuple[int, int]:
    """(prompt, completion) reserved at admission: the prompt estimated from the body size and
    every completion token the request may ask for. Reconciled with the real usage."""
    prompt = call.usage.prompt_estimate
    if call.kind is RequestKind.EMBEDDING:
        return prompt, 0
    body = call.body
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    n = body.get("n") or 1
    return prompt, int(completion) * int(n)


def with_tier_limits(
    stored: Mapping[str, Overrides] | None, tenant: Overrides | None, key: Overrides | None
) -> Mapping[str, Overrides] | None:
    """The tier's limits as the tenant's and the key's defaults: a stored limit still wins, field
    by field; a field neither sets keeps the configured default."""
    merged = dict(stored or {})
    for scope, tier in (("tenant", tenant), ("key", key)):
        if tier is not None:
            merged[scope] = effective(merged.get(scope), tier)
    return merged or stored


class RateLimits:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(
        self, admission: Admission, default_max_tokens: int, stored: StoredLimits | None = None
    ) -> None:
        self.admission = admission
        self._default_max_tokens = default_max_tokens
        self._stored = stored
        self._tier_defaults: dict[int, tuple[object, Overrides | None, Overrides | None]] = {}

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        prompt, completion = reserved_tokens(call, self._default_max_tokens)
        who = identity_of(call.caller)
        stored = await self._stored(who) if self._stored is not None else None
        if call.tier is not None:
            defaults = self._tier_defaults.get(id(call.tier))
            if defaults is None:  # once per compiled tier (the tier object is kept, so its id stays its own)
                if len(self._tier_defaults) >= MAX_TIERS_KEPT:  # tiers are recompiled when they change
                    self._tier_defaults.clear()
                spec = call.tier.spec
                defaults = self._tier_defaults[id(call.tier)] = (call.tier, overrides_of(spec.tenant_limits),
                                                                 overrides_of(spec.key_limits))
            if defaults[1] is not None or defaults[2] is not None:
                stored = with_tier_limits(stored, defaults[1], defaults[2])
        ticket = await self.admission.admit(who, call.model, prompt, completion, stored)
        if ticket is not None:
            call.headers.update(ticket.headers)
            call.defer(_Settle(self.admission, ticket, call))
        return await call_next(call)


class _Settle:
    __slots__ = ("_admission", "_call", "_ticket")

    def __init__(self, admission: Admission, ticket: Ticket, call: Call) -> None:
        self._admission = admission
        self._ticket = ticket
        self._call = call

    async def __call__(self, ending: Ending) -> None:
        await self._admission.finish(self._ticket, self._call.usage.settled())
