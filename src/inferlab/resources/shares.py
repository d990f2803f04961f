"""Each pool's terms from the tenants' tiers: capacity, and every tenant's share of it.

A tier's share is written in sequences and KV tokens and/or as a fraction of the pool
(``ResourceShareSpec``); here it becomes a ``TenantShare`` for one pool's capacity. Tenants whose
share is the default tier's are left to ``default_share`` (a default share never carries a
guarantee: the capacity kept for a guarantee must be known in advance, so only named tenants hold
one). Active reservations raise their tenants' guarantees (``ReservationBook``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from inferlab.config.tenants import ResourceShareSpec
from inferlab.resources.model import Amount, PoolCapacity, PoolConfig, TenantShare


def share_for(spec: ResourceShareSpec, capacity: PoolCapacity) -> TenantShare:
    """The share a tier spec gives in a pool of ``capacity`` (larger guarantee, smaller limit wins)."""
    whole = capacity.effective
    guarantee = Amount(
        max(spec.guarantee_sequences, math.floor(whole.sequences * spec.guarantee_share)),
        max(spec.guarantee_kv_tokens, math.floor(whole.kv_tokens * spec.guarantee_share)),
    )
    limits: list[Amount] = []
    if spec.limit_sequences is not None or spec.limit_kv_tokens is not None:
        limits.append(Amount(
            whole.sequences if spec.limit_sequences is None else spec.limit_sequences,
            whole.kv_tokens if spec.limit_kv_tokens is None else spec.limit_kv_tokens,
        ))
    if spec.limit_share is not None:
        limits.append(Amount(math.floor(whole.sequences * spec.limit_share),
                             math.floor(whole.kv_tokens * spec.limit_share)))
    limit = None
    for each in limits:
        limit = each if limit is None else limit.at_most(each)
    if limit is not None:
        guarantee = guarantee.at_most(limit)
    return TenantShare(guarantee, limit, spec.may_borrow)


def pool_config(capacity: PoolCapacity, default: ResourceShareSpec,
                tenants: Iterable[tuple[str, ResourceShareSpec]]) -> PoolConfig:
    """The pool's terms: ``tenants`` (id, share spec) named where their share differs from the
    default tier's ``default``; the default share without its guarantee."""
    default_share = share_for(default, capacity)
    default_share = TenantShare(Amount(), default_share.limit, default_share.may_borrow)
    shares = {}
    for tenant, spec in tenants:
        share = share_for(spec, capacity)
        if share != default_share:
            shares[tenant] = share
    return PoolConfig(capacity, shares, default_share)
