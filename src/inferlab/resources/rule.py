"""The admission rule: guarantees kept, limits never passed, idle capacity lent — pure functions.

Per dimension (sequences, KV tokens), with ``used_t`` what tenant t holds, ``g_t`` its
guarantee and ``C`` the pool's effective capacity, the allocator keeps

    committed = Σ_t max(used_t, g_t) ≤ C

— capacity a tenant does not hold stays kept for its unused guarantee. A request ``r`` of
tenant t is admitted iff

    (0) r fits the tenant's ceiling at all: min(limit_t, C, and g_t if t may not borrow)
                                                                       else request_too_large
    (a) used_t + r ≤ limit_t                                           else tenant_limit
    (b) used_t + r ≤ g_t, unless t may borrow                           else no_borrowing
    (c) extra = max(used_t + r, g_t) − max(used_t, g_t) fits C − committed
                                                                       else pool_full
    (d) Σ_t used_t + r ≤ C                                             else overbooked

``extra`` is exactly the part of r above the guarantee: what the request *borrows*. It is handed
back when the request ends (nothing running is ever preempted). While Σ g ≤ C, (c) implies (d)
and a request within its tenant's guarantee always fits: committed already counts it. When the
guarantees exceed C (an *overbooked* pool, or a capacity lowered while grants are held), nobody
borrows and requests within their guarantee are admitted first come, first served while (d)
holds — the pool is never filled past C.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.resources.model import DEFAULT_SHARE, ZERO, Amount, Refusal, RefusalReason, TenantShare


@dataclass(frozen=True, slots=True)
class PoolTotals:
    """The aggregates the rule needs: C, Σ used and Σ max(used, g)."""

    effective: Amount
    in_flight: Amount
    committed: Amount


def borrowed_part(held: Amount, request: Amount, guarantee: Amount) -> Amount:
    """max(held + request, g) − max(held, g) per dimension: the part of the request above g."""
    return Amount(
        max(held.sequences + request.sequences, guarantee.sequences) - max(held.sequences, guarantee.sequences),
        max(held.kv_tokens + request.kv_tokens, guarantee.kv_tokens) - max(held.kv_tokens, guarantee.kv_tokens),
    )


def committed_change(before: Amount, after: Amount, guarantee: Amount) -> tuple[int, int]:
    """How Σ max(used, g) moves when one tenant's held amount goes from ``before`` to ``after``."""
    return (
        max(after.sequences, guarantee.sequences) - max(before.sequences, guarantee.sequences),
        max(after.kv_tokens, guarantee.kv_tokens) - max(before.kv_tokens, guarantee.kv_tokens),
    )


def decide(totals: PoolTotals, held: Amount, share: TenantShare, request: Amount) -> Amount | RefusalReason:
    """The borrowed part of ``request`` when it is admitted, else the reason it is refused."""
    if not request.fits_in(share.ceiling(totals.effective)):
        return "request_too_large"
    after = held + request
    if share.limit is not None and not after.fits_in(share.limit):
        return "tenant_limit"
    if not share.may_borrow and not after.fits_in(share.guarantee):
        return "no_borrowing"
    extra = borrowed_part(held, request, share.guarantee)
    free_seq = totals.effective.sequences - totals.committed.sequences
    free_kv = totals.effective.kv_tokens - totals.committed.kv_tokens
    if (extra.sequences > 0 and extra.sequences > free_seq) or (extra.kv_tokens > 0 and extra.kv_tokens > free_kv):
        return "pool_full"
    if not (totals.in_flight + request).fits_in(totals.effective):
        return "overbooked"
    return extra


def committed_total(held: dict[str, Amount], shares: dict[str, Amount]) -> Amount:
    """Σ max(held, g) over every tenant that holds something or has a guarantee (from scratch)."""
    seq = kv = 0
    for tenant in held.keys() | shares.keys():
        used, guarantee = held.get(tenant, Amount()), shares.get(tenant, Amount())
        seq += max(used.sequences, guarantee.sequences)
        kv += max(used.kv_tokens, guarantee.kv_tokens)
    return Amount(seq, kv)


def refusal(reason: RefusalReason, pool: str, tenant: str, request_id: str, request: Amount, held: Amount = ZERO,
            share: TenantShare = DEFAULT_SHARE, totals: PoolTotals | None = None) -> Refusal:
    """The refusal, with a sentence an operator (and the API's error message) can act on."""
    return Refusal(pool, tenant, request_id, reason, request, explain(reason, tenant, pool, request, held, share, totals))


def explain(reason: RefusalReason, tenant: str, pool: str, request: Amount, held: Amount, share: TenantShare,
            totals: PoolTotals | None) -> str:
    if reason == "unknown_pool" or totals is None:
        return f"pool {pool!r} has no capacity configured"
    if reason == "request_too_large":
        ceiling = share.ceiling(totals.effective)
        return (f"the request ({request}) is larger than tenant {tenant!r} can ever hold in pool {pool!r} ({ceiling}):"
                " lower max_tokens or the prompt")
    if reason == "tenant_limit":
        return f"tenant {tenant!r} holds {held} of its limit {share.limit} in pool {pool!r}"
    if reason == "no_borrowing":
        return (f"tenant {tenant!r} holds {held} of its guarantee {share.guarantee} in pool {pool!r}"
                " and may not borrow idle capacity")
    if reason == "pool_full":
        return (f"pool {pool!r} has no idle capacity to lend: {totals.committed} of {totals.effective}"
                " is held or kept for guarantees")
    return (f"pool {pool!r} is overbooked: its guarantees exceed its capacity {totals.effective} and"
            f" {totals.in_flight} is in flight")
