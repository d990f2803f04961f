"""The in-process allocator: the rule of :mod:`.rule` over dicts, for one gateway process.

Every method runs to completion without awaiting, so coroutines of one event loop never see a
half-updated pool. The aggregates the rule needs (Σ used, Σ max(used, g)) are kept up to date
on each admission and release, and recomputed from scratch when a pool is configured.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter, deque
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


class _Waiters:
    """Requests waiting for capacity in one pool, woken one at a time in arrival order.

    A release frees one grant, so it wakes one waiter: waking them all would make every one of them
    try for it (a thundering herd that costs the gateway CPU per waiter per release). ``epoch``
    counts the releases; a waiter woken by one that cannot use it (its own limit) passes the wake
    on to the next waiter that has not tried since that release (``baton``), and the wake stops
    once every waiter has. A release inside its tenant's guarantee frees nothing anyone else may
    borrow: it wakes only that tenant's waiters.
    """

    __slots__ = ("_queue", "baton", "epoch")

    def __init__(self) -> None:
        self._queue: deque[tuple[str, int, asyncio.Future[None]]] = deque()
        self.epoch = 0
        self.baton = False  # a wake is out: its waiter has not been admitted yet

    def add(self, tenant: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((tenant, self.epoch, future))
        return future

    def released(self, tenant: str, *, borrowable: bool) -> None:
        self.epoch += 1
        self.wake_one(None if borrowable else tenant)

    def wake_one(self, tenant: str | None = None) -> None:
        """Wake the first waiter (of ``tenant``, when given) that has not tried since the last release."""
        queue = self._queue
        while queue and queue[0][2].done():
            queue.popleft()
        for entry in queue:
            who, tried, future = entry
            if not future.done() and tried < self.epoch and (tenant is None or who == tenant):
                queue.remove(entry)
                future.set_result(None)
                self.baton = True
                return
        self.baton = False

    def wake_all(self) -> None:
        self.epoch += 1
        while self._queue:
            future = self._queue.popleft()[2]
            if not future.done():
                future.set_result(None)


class _Pool:
    __slots__ = ("admitted", "committed", "config", "count", "expired", "grants", "held",
                 "in_flight", "refused", "waiters")

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
        self.waiters = _Waiters()
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
        self.waiters.wake_all()

    def take_back(self, grant: Grant) -> None:
        """Release ``grant``'s amount and wake whom it may help."""
        committed = self.committed
        self.move(grant.tenant, grant.amount, -1)
        self.waiters.released(grant.tenant, borrowable=self.committed != committed)

    def prune(self, now: float) -> None:
        grants = self.grants
        while grants:
            grant, expires_at = next(iter(grants.values()))
            if expires_at > now:
                break
            del grants[grant.request_id]
            self.take_back(grant)
            self.expired[grant.tenant] += 1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
        state.waiters.baton = False
        return grant

    async def release(self, grant: Grant) -> bool:
        state = self._pool(grant.pool)
        held_lease = state.grants.get(grant.request_id) if state is not None else None
        if state is None or held_lease is None or held_lease[0].token != grant.token:
            return False
        del state.grants[grant.request_id]
        state.take_back(grant)
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

    async def wait_for_capacity(self, pool: str, timeout_s: float, tenant: str = "") -> None:
        state = self._pools.get(pool)
        if state is None:
            await asyncio.sleep(timeout_s)
            return
        waiters = state.waiters
        if waiters.baton:
            waiters.wake_one()  # this waiter was woken and could not use it: the next one may
        future = waiters.add(tenant)
        timer = asyncio.get_running_loop().call_later(timeout_s, _resolve, future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                waiters.wake_one()  # woken, then cancelled before trying: hand the wake on
            raise
        finally:
            timer.cancel()

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
