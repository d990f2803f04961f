"""The in-process rate limiter: the same weighted sliding log as the Redis one, in dicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from inferlab.ratelimit.protocol import BucketState, Charge, Decision


class _Bucket:
    """Charges alive in one bucket, in expiry order (one bucket always has one ttl)."""

    __slots__ = ("entries", "total", "unsettled")

    def __init__(self) -> None:
        # lease -> [expires_at, amount, unsettled amount]; insertion = expiry order (renewal re-inserts)
        self.entries: dict[str, list[float]] = {}
        self.total = 0.0
        self.unsettled = 0.0

    def prune(self, now: float) -> None:
        entries = self.entries
        while entries:
            lease = next(iter(entries))
            expires_at, amount, unsettled = entries[lease]
            if expires_at > now:
                return
            del entries[lease]
            self.total -= amount
            self.unsettled -= unsettled

    def retry_after(self, now: float, amount: int, limit: int) -> float:
        freed = 0.0
        for expires_at, held, _ in self.entries.values():
            freed += held
            if self.total - freed + amount <= limit:
                return max(0.0, expires_at - now)
        return 0.0

    def reset_s(self, now: float) -> float:
        if not self.entries:
            return 0.0
        return max(0.0, next(iter(self.entries.values()))[0] - now)


SWEEP_EVERY = 4096  # admissions between sweeps of buckets whose charges have all expired


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._until_sweep = SWEEP_EVERY

    def _sweep(self, now: float) -> None:
        self._until_sweep = SWEEP_EVERY
        for key in list(self._buckets):
            bucket = self._buckets[key]
            bucket.prune(now)
            if not bucket.entries:
                del self._buckets[key]

    async def acquire(self, lease: str, charges: Sequence[Charge]) -> Decision:
        return self.acquire_now(lease, charges)

    def acquire_now(self, lease: str, charges: Sequence[Charge]) -> Decision:
        now = self._clock()
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(now)
        buckets = []
        denied, retry = -1, 0.0
        for i, charge in enumerate(charges):
            bucket = self._buckets.get(charge.key)
            if bucket is None:
                bucket = self._buckets[charge.key] = _Bucket()
            bucket.prune(now)
            buckets.append(bucket)
            if denied < 0 and bucket.total + charge.amount > charge.limit:
                denied = i
                retry = charge.ttl_s if charge.amount > charge.limit else bucket.retry_after(now, charge.amount, charge.limit)
        if denied < 0:
            for charge, bucket in zip(charges, buckets, strict=True):
                bucket.entries[lease] = [now + charge.ttl_s, charge.amount, charge.amount]
                bucket.total += charge.amount
                bucket.unsettled += charge.amount
        states = tuple(
            BucketState(charge.limit, max(0, int(charge.limit - bucket.total)), bucket.reset_s(now), int(bucket.unsettled))
            for charge, bucket in zip(charges, buckets, strict=True)
        )
        return Decision(denied < 0, states, retry, denied)

    async def settle(self, lease: str, amounts: Sequence[tuple[str, int]]) -> None:
        self.settle_now(lease, amounts)

    def settle_now(self, lease: str, amounts: Sequence[tuple[str, int]]) -> None:
        for key, amount in amounts:
            bucket = self._buckets.get(key)
            entry = bucket.entries.get(lease) if bucket is not None else None
            if bucket is None or entry is None:
                continue
            bucket.total += amount - entry[1]
            bucket.unsettled -= entry[2]
            entry[2] = 0
            if amount <= 0:
                del bucket.entries[lease]
                if not bucket.entries:
                    del self._buckets[key]
            else:
                entry[1] = amount

    async def renew(self, held: Sequence[tuple[str, str, float]]) -> int:
        return self.renew_now(held)

    def renew_now(self, held: Sequence[tuple[str, str, float]]) -> int:
        now = self._clock()
        alive = 0
        for lease, key, ttl_s in held:
            bucket = self._buckets.get(key)
            entry = bucket.entries.pop(lease, None) if bucket is not None else None
            if bucket is None or entry is None:
                continue
            if entry[0] <= now:  # expired: its holder was too late, the slot is already free
                bucket.total -= entry[1]
                bucket.unsettled -= entry[2]
                continue
            entry[0] = max(entry[0], now + ttl_s)
            bucket.entries[lease] = entry  # re-inserted last: one ttl per bucket keeps expiry order
            alive += 1
        return alive

    async def aclose(self) -> None:
        self._buckets.clear()
