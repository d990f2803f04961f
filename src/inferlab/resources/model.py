"""The allocator's plain data: amounts, pool capacity, tenant shares, grants, refusals, usage.

Every amount has two dimensions, counted separately and checked together: concurrent
*sequences* (one per admitted request) and *KV-cache tokens* (``prompt + max_tokens`` reserved
per request). Frozen dataclasses only; the admission rule over them is :mod:`.rule`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from inferlab.errors import InvalidRequest

#: Why an admission was refused. ``request_too_large`` and ``unknown_pool`` can never succeed as
#: asked (answer 400/404); the others may once grants end (queue, or answer 429/503).
RefusalReason = Literal["tenant_limit", "pool_full", "no_borrowing", "overbooked", "request_too_large", "unknown_pool"]
REFUSAL_REASONS: tuple[RefusalReason, ...] = (
    "tenant_limit", "pool_full", "no_borrowing", "overbooked", "request_too_large", "unknown_pool",
)
NEVER_FITS: frozenset[RefusalReason] = frozenset({"request_too_large", "unknown_pool"})


@dataclass(frozen=True, slots=True)
class Amount:
    """Concurrent sequences and KV-cache tokens; never negative."""

    sequences: int = 0
    kv_tokens: int = 0

    def __post_init__(self) -> None:
        if self.sequences < 0 or self.kv_tokens < 0:
            raise InvalidRequest(f"an amount is never negative: {self.sequences} sequences, {self.kv_tokens} KV tokens",
                                 param="amount")

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.sequences + other.sequences, self.kv_tokens + other.kv_tokens)

    def minus(self, other: Amount) -> Amount:
        """``self - other`` per dimension, floored at 0 (the part of self above other)."""
        return Amount(max(0, self.sequences - other.sequences), max(0, self.kv_tokens - other.kv_tokens))

    def fits_in(self, other: Amount) -> bool:
        """True when no dimension of self is above the same dimension of other."""
        return self.sequences <= other.sequences and self.kv_tokens <= other.kv_tokens

    def at_least(self, other: Amount) -> Amount:
        """The per-dimension maximum."""
        return Amount(max(self.sequences, other.sequences), max(self.kv_tokens, other.kv_tokens))

    def at_most(self, other: Amount) -> Amount:
        """The per-dimension minimum."""
        return Amount(min(self.sequences, other.sequences), min(self.kv_tokens, other.kv_tokens))

    def __bool__(self) -> bool:
        return bool(self.sequences or self.kv_tokens)

    def __str__(self) -> str:
        return f"{self.sequences} sequences / {self.kv_tokens} KV tokens"


ZERO = Amount()


def request_amount(kv_tokens: int) -> Amount:
    """What one request holds: one sequence and its worst-case KV tokens (prompt + max_tokens)."""
    return Amount(1, kv_tokens)


@dataclass(frozen=True, slots=True)
class PoolCapacity:
    """What a pool's replicas hold at once; ``overcommit`` scales both dimensions (1.0: none)."""

    sequences: int
    kv_tokens: int
    overcommit: float = 1.0

    def __post_init__(self) -> None:
        if self.sequences < 0 or self.kv_tokens < 0:
            raise InvalidRequest("a pool's capacity is never negative", param="capacity")
        if not (math.isfinite(self.overcommit) and self.overcommit > 0):
            raise InvalidRequest(f"overcommit must be a positive ratio, got {self.overcommit}", param="overcommit")

    @property
    def effective(self) -> Amount:
        """The admission ceiling C: floor(capacity x overcommit), per dimension."""
        return Amount(math.floor(self.sequences * self.overcommit), math.floor(self.kv_tokens * self.overcommit))


@dataclass(frozen=True, slots=True)
class TenantShare:
    """A tenant's terms in one pool: a guarantee held for it even when others flood the pool, a
    limit it never passes (None: the pool's capacity), and whether it may borrow idle capacity."""

    guarantee: Amount = ZERO
    limit: Amount | None = None
    may_borrow: bool = True

    def __post_init__(self) -> None:
        if self.limit is not None and not self.guarantee.fits_in(self.limit):
            raise InvalidRequest(f"a guarantee ({self.guarantee}) above the limit ({self.limit}) could never be used",
                                 param="guarantee")

    def ceiling(self, capacity: Amount) -> Amount:
        """The most this tenant could ever hold in a pool of effective ``capacity``."""
        top = capacity if self.limit is None else capacity.at_most(self.limit)
        return top if self.may_borrow else top.at_most(self.guarantee)


DEFAULT_SHARE = TenantShare()  # no guarantee, no limit, may borrow


@dataclass(frozen=True)
class PoolConfig:
    """A pool's capacity and every tenant's share; tenants not named get ``default_share``."""

    capacity: PoolCapacity
    shares: Mapping[str, TenantShare] = field(default_factory=dict)
    default_share: TenantShare = DEFAULT_SHARE

    def __post_init__(self) -> None:
        if self.default_share.guarantee:
            raise InvalidRequest("only named tenants have a guarantee: the capacity kept for it must be known in advance",
                                 param="default_share")
        object.__setattr__(self, "shares", MappingProxyType(dict(self.shares)))

    def share_of(self, tenant: str) -> TenantShare:
        return self.shares.get(tenant, self.default_share)

    @property
    def guaranteed(self) -> Amount:
        """The sum of the named tenants' guarantees."""
        total = ZERO
        for share in self.shares.values():
            total = total + share.guarantee
        return total

    @property
    def overbooked(self) -> Amount:
        """How far the guarantees exceed the effective capacity (ZERO: every guarantee can be honoured)."""
        return self.guaranteed.minus(self.capacity.effective)


@dataclass(frozen=True, slots=True)
class Grant:
    """An admitted request's hold on a pool, released exactly once.

    ``borrowed`` is the part of ``amount`` above the tenant's guarantee when it was admitted;
    ``token`` tells this grant from a later one that reuses its ``request_id``."""

    pool: str
    tenant: str
    request_id: str
    amount: Amount
    borrowed: Amount
    token: str


@dataclass(frozen=True, slots=True)
class Refusal:
    pool: str
    tenant: str
    request_id: str
    reason: RefusalReason
    requested: Amount
    message: str

    @property
    def can_wait(self) -> bool:
        """True when the request may fit once grants end (queue it); False: it never will as asked."""
        return self.reason not in NEVER_FITS


@dataclass(frozen=True, slots=True)
class TenantUsage:
    tenant: str
    share: TenantShare
    held: Amount
    grants: int
    admitted: int = 0  # counters since the pool's state was created
    expired: int = 0  # grants freed by their lease running out (their holder never released them)
    refused: Mapping[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def borrowed(self) -> Amount:
        """What the tenant holds above its guarantee: handed back as its borrowed requests end."""
        return self.held.minus(self.share.guarantee)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    pool: str
    config: PoolConfig
    in_flight: Amount  # the sum of every tenant's held amount
    committed: Amount  # the sum over tenants of max(held, guarantee): what is held or kept for guarantees
    tenants: tuple[TenantUsage, ...]  # every named tenant, and every other tenant with a grant or a count

    @property
    def effective(self) -> Amount:
        return self.config.capacity.effective

    @property
    def idle(self) -> Amount:
        """Capacity neither held nor kept for a guarantee: what tenants may borrow."""
        return self.effective.minus(self.committed)

    def tenant(self, tenant: str) -> TenantUsage:
        for usage in self.tenants:
            if usage.tenant == tenant:
                return usage
        return TenantUsage(tenant, self.config.share_of(tenant), ZERO, 0)
