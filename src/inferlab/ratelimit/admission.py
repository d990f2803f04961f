"""Admission: charge a request against its buckets before routing, settle it exactly once after.

``admit`` raises (see ``refusals``: 400 for a request that can never fit, 429 otherwise) or
returns a ``Ticket``; ``finish`` reconciles the reserved tokens and spend with the real usage and
gives the concurrency slot back. A ticket settles once however often ``finish`` is called, and
``outstanding`` counts the tickets not settled yet (zero once every request has ended).

Concurrency slots are short leases: ``keep_leases`` (one task per process, started by the
composition root) renews every lease this process still holds in one limiter call each
``lease_ttl_s / 3``, so a process killed while holding slots frees them one TTL later.

A quota is never exceeded: its reservation is the worst case, and a usage above the reservation
(an engine ignoring ``max_tokens``) is charged at the reservation, counted in ``overcharged``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from inferlab.errors import InferLabError
from inferlab.ratelimit.holds import HoldTimes
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import LimitPolicy, Overrides, limit_headers
from inferlab.ratelimit.protocol import Charge, Decision, RateLimiter
from inferlab.ratelimit.refusals import Reservation, busy_refusal, exceeds_limit, never_fits, quota_refusal


@dataclass(slots=True)
class Ticket:
    lease: str
    model: str
    prompt: int
    charges: list[Charge]
    headers: dict[str, str]
    settled: bool = field(default=False)
    admitted_at: float = 0.0


class Admission:
    def __init__(
        self, limiter: RateLimiter, policy: LimitPolicy, on_reject: Callable[[str], None] | None = None,
        *, logger: logging.Logger | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._on_reject = on_reject or (lambda kind: None)
        self._log = logger or logging.getLogger("inferlab.ratelimit")
        self._clock = clock
        self._leases: dict[str, list[tuple[str, str, float]]] = {}  # lease -> its concurrency charges
        self.holds = HoldTimes()
        self.outstanding = 0
        self.overcharged = 0

    async def admit(
        self, who: Identity, model: str, prompt: int, completion: int,
        overrides: Mapping[str, Overrides] | None = None,
    ) -> Ticket | None:
        charges = self._policy.charges(who, model, prompt, completion, overrides)
        if not charges:
            return None
        too_big = never_fits(charges)
        if too_big is not None:
            self._on_reject(too_big.kind)
            raise exceeds_limit(too_big, Reservation(prompt, completion))
        lease = f"{self._prefix}{next(self._ids):x}"
        decision = await self._limiter.acquire(lease, charges)
        headers = limit_headers(charges, decision.states)
        if not decision.admitted:
            self._on_reject(charges[decision.denied].kind)
            raise self._refusal(charges, decision, headers)
        self.outstanding += 1
        held = [(lease, c.key, c.ttl_s) for c in charges if c.kind == "concurrent"]
        if held:
            self._leases[lease] = held
        return Ticket(lease, model, prompt, charges, headers, admitted_at=self._clock())

    def _refusal(self, charges: list[Charge], decision: Decision, headers: dict[str, str]) -> InferLabError:
        charge, state = charges[decision.denied], decision.states[decision.denied]
        if charge.kind.startswith("quota"):
            return quota_refusal(charge, state, headers, self.holds.reservations_settle_in())
        if charge.kind == "concurrent":
            return busy_refusal(charge, state, headers, self.holds.slot_frees_in(charge.key, charge.limit))
        return busy_refusal(charge, state, headers, decision.retry_after_s)

    async def renew(self) -> int:
        """Renew every concurrency lease this process holds, in one limiter call; how many were alive."""
        held = [entry for entries in self._leases.values() for entry in entries]
        return await self._limiter.renew(held) if held else 0

    async def keep_leases(self, every_s: float) -> None:
        """Renew the leases every ``every_s`` until cancelled (the app's lifespan)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - the loop must outlive one failed renewal; leases then expire
                self._log.warning("renewing concurrency leases failed", exc_info=True)

    async def peek(
        self, who: Identity, model: str, overrides: Mapping[str, Overrides] | None = None
    ) -> dict[str, tuple[int, int]]:
        """Each bucket of ``who`` on ``model``: (limit, used), without charging anything."""
        probe = [Charge(c.key, c.limit, 0, c.ttl_s, c.kind) for c in self._policy.charges(who, model, 0, 0, overrides)]
        lease = f"{self._prefix}peek{next(self._ids):x}"
        decision = await self._limiter.acquire(lease, probe)
        await self._limiter.settle(lease, [(c.key, 0) for c in probe])
        return {c.key: (c.limit, c.limit - state.remaining) for c, state in zip(probe, decision.states, strict=True)}

    async def finish(self, ticket: Ticket, usage: tuple[int, int] | None) -> None:
        """``usage``: (prompt, completion) tokens really used, or None to keep the reservation."""
        if ticket.settled:
            return
        ticket.settled = True
        self.outstanding -= 1
        self._leases.pop(ticket.lease, None)
        self.holds.observe([c.key for c in ticket.charges if c.kind == "concurrent"], self._clock() - ticket.admitted_at)
        amounts: list[tuple[str, int]] = []
        for charge in ticket.charges:
            if charge.kind == "concurrent":
                amounts.append((charge.key, 0))
            elif charge.kind == "requests":
                continue
            elif usage is None:
                amounts.append((charge.key, charge.amount))  # the reservation stands, no longer in flight
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
