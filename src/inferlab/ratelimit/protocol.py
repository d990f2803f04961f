"""The rate-limiter interface: charges against buckets, admitted all together or not at all.

A *bucket* is one counter (``requests`` of one key per window, ``tokens`` of one tenant per
window, ``concurrent`` requests of one user...). A *charge* asks a bucket for ``amount`` units that
count against it for ``ttl_s`` seconds: a window for rates, a lease for concurrency. Each charge is
recorded under the request's lease id, so it can later be *settled*: set to the real amount (token
reconciliation), or to 0 (a concurrency slot given back). A refused admission charges nothing.
A charge not settled yet is *unsettled* (a reservation still in flight); each bucket reports how
much of its total is unsettled, so a quota refusal can tell "exhausted" from "reserved for now".

A concurrency lease is short (``lease_ttl_s``) and *renewed* while its request lives: the process
holding it extends all its leases in one call every few seconds, so the slots of a process that
dies without settling free one TTL later.

The algorithm is a weighted sliding log: exact (a limit of 100 per minute admits 100 in any
60 seconds, never more), with memory proportional to the charges alive in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

LimitKind = Literal["requests", "tokens", "concurrent", "quota_tokens", "quota_spend"]


@dataclass(frozen=True, slots=True)
class Charge:
    key: str
    limit: int
    amount: int
    ttl_s: float
    kind: LimitKind = "requests"
    field: str = ""  # the setting it enforces (rpm, tpm, daily_tokens...) and its scope, for messages
    scope: str = ""


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket after the decision: how much is left, and when its oldest charge expires."""

    limit: int
    remaining: int
    reset_s: float
    unsettled: int = 0  # the part of limit - remaining held by charges never settled (in flight)


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    states: tuple[BucketState, ...]  # one per charge, in order
    retry_after_s: float = 0.0       # refused: when the refused bucket has room again
    denied: int = -1                 # refused: index of the first charge that did not fit


class RateLimiter(Protocol):
    async def acquire(self, lease: str, charges: Sequence[Charge]) -> Decision:
        """Admit every charge atomically, or none of them."""
        ...

    async def settle(self, lease: str, amounts: Sequence[tuple[str, int]]) -> None:
        """Set the lease's charge in each bucket to a new amount; 0 removes it."""
        ...

    async def renew(self, held: Sequence[tuple[str, str, float]]) -> int:
        """Extend each (lease, bucket key, ttl_s) charge still alive to expire ttl_s from now, all in
        one call; a charge settled to 0 or expired stays gone. Returns how many were still alive."""
        ...

    async def aclose(self) -> None:
        ...
