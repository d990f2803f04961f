"""The in-process allocator: the rule of :mod:`.rule` over dicts, for one gateway process.

Every method runs to completion without awaiting, so coroutines of one event loop never see a
half-updated pool. The aggregates the rule needs (Σ used, Σ max(used, g)) are kept up to date
on each admission and release, and recomputed from scratch when a pool is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence

from inferlab.resources.model import (
    ZERO,
    Amount,
    Grant,
    PoolConfig,
    PoolUsage,
    Refusal,
    TenantUsage,
    request_amount,
)
from inferlab.resources.rule import PoolTotals, committed_change, committed_total, decide, refusal


class _Pool:
    __slots__ = ("admitted", "changed", "committed", "config", "count", "expired", "grants", "held",
                 "in_flight", "refused")

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.held: dict[str, Amount] = {}
        self.count: Counter[str] = Counter()  # grants held per tenant
        self.in_flight = ZERO
        self.committed = ZERO
        self.grants: dict[str, tuple[Grant, float]] = {}  # request_id -> (grant, expires_at); expiry order
        self.admitted: Counter[str] = Counter()
        self.expired: Counter[str] = Counter()
        self.refused: dict[str, Counter[str]] = {}
        self.changed = asyncio.Event()
        self.recompute()

    def recompute(self) -> None:
        self.in_flight = sum(self.held.values(), ZERO)
        guarantees = {tenant: share.guarantee for tenant, share in self.config.shares.items()}
        self.committed = committed_total(self.held, guarantees)

    def totals(self) -> PoolTotals:
        return PoolTotals(self.config.capacity.effective, self.in_flight, self.committed)

    def move(self, tenant: str, change: Amount, sign: int) -> None:
        """Add (sign 1) or take back (sign -1) ``change`` from the tenant and every aggregate."""
        before = self.held.get(tenant, ZERO)
        after = before + change if sign > 0 else before.minus(change)
        seq, kv = committed_change(before, after, self.config.share_of(tenant).guarantee)
        self.committed = Amount(self.committed.sequences + seq, self.committed.kv_tokens + kv)
        self.in_flight = self.in_flight + change if sign > 0 else self.in_flight.minus(change)
        self.count[tenant] += sign
        if after:
            self.held[tenant] = after
        else:
            self.held.pop(tenant, None)
            del self.count[tenant]

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def prune(self, now: float) -> None:
        grants = self.grants
        freed = False
        while grants:
            grant, expires_at = next(iter(grants.values()))
            if expires_at > now:
                break
            del grants[grant.request_id]
            self.move(grant.tenant, grant.amount, -1)
            self.expired[grant.tenant] += 1
            freed = True
        if freed:
            self.wake()


class MemoryAllocator:
    """``lease_ttl_s``: None (default) never expires a grant — in one process, a grant outlives
    its holder only through a bug; set it to run the same lease semantics as Redis."""

    def __init__(self, lease_ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = lease_ttl_s
        self._clock = clock
        self._pools: dict[str, _Pool] = {}
        self._tokens = (f"{i:x}" for i in itertools.count(1))  # tells a grant from a later one of its request id

    def _expiry(self) -> float:
        return math.inf if self._ttl is None else self._clock() + self._ttl

    def _pool(self, name: str) -> _Pool | None:
        pool = self._pools.get(name)
        if pool is not None and self._ttl is not None:
            pool.prune(self._clock())
        return pool

    async def configure(self, pool: str, config: PoolConfig) -> None:
        state = self._pool(pool)
        if state is None:
            self._pools[pool] = _Pool(config)
            return
        state.config = config
        state.recompute()
        state.wake()

    async def try_admit(self, pool: str, tenant: str, kv_tokens: int, request_id: str) -> Grant | Refusal:
        request = request_amount(kv_tokens)
        state = self._pool(pool)
        if state is None:
            return refusal("unknown_pool", pool, tenant, request_id, request)
        held_lease = state.grants.get(request_id)
        if held_lease is not None:
            return held_lease[0]
        share = state.config.share_of(tenant)
        held = state.held.get(tenant, ZERO)
        totals = state.totals()
        decision = decide(totals, held, share, request)
        if isinstance(decision, str):
            state.refused.setdefault(tenant, Counter())[decision] += 1
            return refusal(decision, pool, tenant, request_id, request, held, share, totals)
        grant = Grant(pool, tenant, request_id, request, decision, next(self._tokens))
        state.move(tenant, request, 1)
        state.grants[request_id] = (grant, self._expiry())
        state.admitted[tenant] += 1
        return grant

    async def release(self, grant: Grant) -> bool:
        state = self._pool(grant.pool)
        held_lease = state.grants.get(grant.request_id) if state is not None else None
        if state is None or held_lease is None or held_lease[0].token != grant.token:
            return False
        del state.grants[grant.request_id]
        state.move(grant.tenant, grant.amount, -1)
        state.wake()
        return True

    async def renew(self, grants: Sequence[Grant]) -> int:
        alive = 0
        for grant in grants:
            state = self._pool(grant.pool)
            held_lease = state.grants.get(grant.request_id) if state is not None else None
            if state is None or held_lease is None or held_lease[0].token != grant.token:
                continue  # released, expired, or another grant now under that request id
            del state.grants[grant.request_id]
            state.grants[grant.request_id] = (held_lease[0], self._expiry())  # re-inserted last: expiry order
            alive += 1
        return alive

    async def wait_for_capacity(self, pool: str, timeout_s: float) -> None:
        state = self._pools.get(pool)
        if state is None:
            await asyncio.sleep(timeout_s)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.changed.wait(), timeout_s)

    async def usage(self, pool: str) -> PoolUsage | None:
        state = self._pool(pool)
        if state is None:
            return None
        config = state.config
        names = sorted(config.shares.keys() | state.held.keys() | state.admitted.keys() | state.refused.keys()
                       | state.expired.keys())
        tenants = tuple(
            TenantUsage(tenant, config.share_of(tenant), state.held.get(tenant, ZERO), state.count.get(tenant, 0),
                        state.admitted.get(tenant, 0), state.expired.get(tenant, 0),
                        dict(state.refused.get(tenant, {})))
            for tenant in names
        )
        return PoolUsage(pool, config, state.in_flight, state.committed, tenants)

    async def aclose(self) -> None:
        for state in self._pools.values():
            state.wake()
        self._pools.clear()
