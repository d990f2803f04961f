"""Admission: charge a request against its buckets before routing, settle it exactly once after.

``admit`` raises ``RateLimited`` (429, ``Retry-After`` and the ``x-ratelimit-*`` headers) or
returns a ``Ticket``; ``finish`` reconciles the reserved tokens and spend with the real usage and
gives the concurrency slot back. A ticket settles once however often ``finish`` is called, and
``outstanding`` counts the tickets not settled yet (zero once every request has ended).

A quota is never exceeded: its reservation is the worst case, and a usage above the reservation
(an engine ignoring ``max_tokens``) is charged at the reservation, counted in ``overcharged``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from inferlab.errors import RateLimited
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import LimitPolicy, Overrides, limit_headers
from inferlab.ratelimit.protocol import Charge, RateLimiter

_MESSAGES = {
    "requests": "Rate limit reached for requests",
    "tokens": "Rate limit reached for tokens",
    "concurrent": "Too many concurrent requests",
    "quota_tokens": "Token quota exhausted",
    "quota_spend": "Spend quota exhausted",
}


@dataclass(slots=True)
class Ticket:
    lease: str
    model: str
    prompt: int
    charges: list[Charge]
    headers: dict[str, str]
    settled: bool = field(default=False)


class Admission:
    def __init__(
        self, limiter: RateLimiter, policy: LimitPolicy, on_reject: Callable[[str], None] | None = None
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._on_reject = on_reject or (lambda kind: None)
        self.outstanding = 0
        self.overcharged = 0

    async def admit(
        self, who: Identity, model: str, prompt: int, completion: int,
        overrides: Mapping[str, Overrides] | None = None,
    ) -> Ticket | None:
        charges = self._policy.charges(who, model, prompt, completion, overrides)
        if not charges:
            return None
        lease = f"{self._prefix}{next(self._ids):x}"
        decision = await self._limiter.acquire(lease, charges)
        headers = limit_headers(charges, decision.states)
        if not decision.admitted:
            kind = charges[decision.denied].kind
            self._on_reject(kind)
            retry = max(decision.retry_after_s, 0.001)
            headers["retry-after-ms"] = str(max(1, round(retry * 1000)))
            code = "insufficient_quota" if kind.startswith("quota") else None
            raise RateLimited(f"{_MESSAGES[kind]}; retry after {retry:.1f}s", retry_after=retry, headers=headers, code=code)
        self.outstanding += 1
        return Ticket(lease, model, prompt, charges, headers)

    async def peek(self, who: Identity, model: str, overrides: Mapping[str, Overrides] | None = None) -> dict[str, tuple[int, int]]:
        """Each bucket of ``who`` on ``model``: (limit, used), without charging anything."""
        probe = [Charge(c.key, c.limit, 0, c.ttl_s, c.kind) for c in self._policy.charges(who, model, 0, 0, overrides)]
        lease = f"{self._prefix}peek{next(self._ids):x}"
        decision = await self._limiter.acquire(lease, probe)
        await self._limiter.settle(lease, [(c.key, 0) for c in probe])
        return {c.key: (c.limit, c.limit - state.remaining) for c, state in zip(probe, decision.states)}

    async def finish(self, ticket: Ticket, usage: tuple[int, int] | None) -> None:
        """``usage``: (prompt, completion) tokens really used, or None to keep the reservation."""
        if ticket.settled:
            return
        ticket.settled = True
        self.outstanding -= 1
        amounts: list[tuple[str, int]] = []
        for charge in ticket.charges:
            if charge.kind == "concurrent":
                amounts.append((charge.key, 0))
            elif usage is None or charge.kind == "requests":
                continue
            elif charge.kind == "tokens":
                amounts.append((charge.key, usage[0] + usage[1]))
            else:
                used = usage[0] + usage[1] if charge.kind == "quota_tokens" else \
                    self._policy.pricing.micro_usd(ticket.model, *usage)
                if used > charge.amount:
                    self.overcharged += 1
                amounts.append((charge.key, min(used, charge.amount)))
        if amounts:
            await self._limiter.settle(ticket.lease, amounts)
