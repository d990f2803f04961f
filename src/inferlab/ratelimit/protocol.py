"""The rate-limiter interface: charges against buckets, admitted all together or not at all.

A *bucket* is one counter (``requests`` of one key per window, ``tokens`` of one tenant per
window, ``concurrent`` requests of one user...). A *charge* asks a bucket for ``amount`` units that
count against it for ``ttl_s`` seconds: a window for rates, a lease for concurrency. Each charge is
recorded under the request's lease id, so it can later be *settled*: set to the real amount (token
reconciliation), or to 0 (a concurrency slot given back). A refused admission charges nothing.

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


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket after the decision: how much is left, and when its oldest charge expires."""

    limit: int
    remaining: int
    reset_s: float


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

    async def aclose(self) -> None:
        ...
