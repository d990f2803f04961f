"""The Redis allocator: pools shared by every gateway replica, one Lua script per operation.

Admission, release, renewal, configuration and the usage snapshot are each one script
(``redis_scripts.py``), so two gateways can never both take the last idle sequence, and a grant
is released once whichever replica (or the lease expiry) gets there first. Grants are stored by
request id with a lease expiry on the Redis clock; see :mod:`.protocol` for the TTL semantics.

``wait_for_capacity`` listens on one pub/sub channel per allocator namespace: each release
(and each configuration, and each expiry the scripts notice) publishes the pool's name, and one
subscription per process wakes that process's waiters of the pool. Local releases wake local
waiters at once too. A waiter whose wake-up is lost (the subscription reconnecting) still
returns at its timeout. Pub/sub rather than polling: a queued request learns of a release in
another gateway within a round-trip, and an idle pool costs Redis nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from inferlab.resources.model import (
    REFUSAL_REASONS,
    ZERO,
    Amount,
    Grant,
    PoolCapacity,
    PoolConfig,
    PoolUsage,
    Refusal,
    RefusalReason,
    TenantShare,
    TenantUsage,
    request_amount,
)
from inferlab.resources.redis_scripts import ADMIT, CONFIGURE, RELEASE, RENEW, USAGE
from inferlab.resources.rule import PoolTotals, refusal

RENEW_CHUNK = 256  # grants per renewal script call: bounds one call's time on the Redis server
RESUBSCRIBE_S = 1.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def encode_share(share: TenantShare) -> str:
    limit = share.limit
    return json.dumps([share.guarantee.sequences, share.guarantee.kv_tokens,
                       -1 if limit is None else limit.sequences, -1 if limit is None else limit.kv_tokens,
                       int(share.may_borrow)])


def decode_share(raw: Any) -> TenantShare:
    gs, gk, ls, lk, borrow = json.loads(_text(raw))
    return TenantShare(Amount(int(gs), int(gk)), None if ls < 0 else Amount(int(ls), int(lk)), bool(borrow))


class _ReleaseSignal:
    """One pub/sub subscription per allocator; per pool, an event set on each release."""

    def __init__(self, client: Any, channel: str, logger: logging.Logger) -> None:
        self._client = client
        self._channel = channel
        self._log = logger
        self._events: dict[str, asyncio.Event] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self, pool: str) -> None:
        event = self._events.pop(pool, None)
        if event is not None:
            event.set()

    async def wait(self, pool: str, timeout_s: float) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="resources-release-signal")
        event = self._events.setdefault(pool, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()  # subscribed: no release published from now on is missed
                await event.wait()

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._ready.set()
                    elif message["type"] == "message":
                        self.notify(_text(message["data"]))
            except (RedisError, OSError):
                self._log.warning("release notifications lost; resubscribing", exc_info=True)
            finally:
                self._ready.clear()
                for pool in list(self._events):  # waiters retry now rather than at their timeout
                    self.notify(pool)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_S)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class RedisAllocator:
    """``client`` is a ``redis.asyncio.Redis`` (closed by its owner, not here); keys are prefixed with
    ``prefix``; a grant not renewed frees ``lease_ttl_s`` after its admission or last renewal."""

    def __init__(self, client: Any, prefix: str = "inferlab:res:", *, lease_ttl_s: float = 30.0,
                 logger: logging.Logger | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = max(1, int(lease_ttl_s * 1000))
        self._channel = prefix + "released"
        tokens = itertools.count(1)
        process = uuid.uuid4().hex[:12]  # unique across the processes sharing the namespace
        self._tokens = (f"{process}{i:x}" for i in tokens)
        self._admit = client.register_script(ADMIT)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._usage = client.register_script(USAGE)
        self._configure = client.register_script(CONFIGURE)
        self._signal = _ReleaseSignal(client, self._channel, logger or logging.getLogger("inferlab.resources"))

    def _keys(self, pool: str) -> list[str]:
        base = f"{self._prefix}pool:{{{pool}}}:"  # one hash tag: a cluster keeps a pool's keys on one slot
        return [base + "state", base + "shares", base + "held", base + "grants", base + "expiry", base + "counts"]

    async def configure(self, pool: str, config: PoolConfig) -> None:
        capacity, effective = config.capacity, config.capacity.effective
        args: list[Any] = [capacity.sequences, capacity.kv_tokens, repr(capacity.overcommit),
                           effective.sequences, effective.kv_tokens, encode_share(config.default_share),
                           self._channel, pool]
        for tenant, share in config.shares.items():
            args.extend((tenant, encode_share(share)))
        await self._configure(keys=self._keys(pool), args=args)
        self._signal.notify(pool)

    async def try_admit(self, pool: str, tenant: str, kv_tokens: int, request_id: str) -> Grant | Refusal:
        request = request_amount(kv_tokens)
        raw = await self._admit(keys=self._keys(pool), args=[
            tenant, request_id, request.sequences, request.kv_tokens, next(self._tokens), self._ttl_ms,
            self._channel, pool])
        status = _text(raw[0])
        if status in ("admitted", "held"):
            return Grant(pool, _text(raw[1]), request_id, Amount(int(raw[2]), int(raw[3])),
                         Amount(int(raw[4]), int(raw[5])), _text(raw[6]))
        reason = self._reason(status)
        if reason == "unknown_pool":
            return refusal(reason, pool, tenant, request_id, request)
        held, totals, share = Amount(int(raw[1]), int(raw[2])), self._totals(raw), decode_share(raw[9])
        return refusal(reason, pool, tenant, request_id, request, held, share, totals)

    @staticmethod
    def _reason(status: str) -> RefusalReason:
        for reason in REFUSAL_REASONS:
            if reason == status:
                return reason
        raise RuntimeError(f"the admission script answered {status!r}")

    @staticmethod
    def _totals(raw: Sequence[Any]) -> PoolTotals:
        return PoolTotals(Amount(int(raw[3]), int(raw[4])), Amount(int(raw[5]), int(raw[6])),
                          Amount(int(raw[7]), int(raw[8])))

    async def release(self, grant: Grant) -> bool:
        released = bool(await self._release(keys=self._keys(grant.pool),
                                            args=[grant.request_id, grant.token, self._channel, grant.pool]))
        if released:
            self._signal.notify(grant.pool)
        return released

    async def renew(self, grants: Sequence[Grant]) -> int:
        by_pool: dict[str, list[Grant]] = defaultdict(list)
        for grant in grants:
            by_pool[grant.pool].append(grant)
        alive = 0
        for pool, held in by_pool.items():
            for start in range(0, len(held), RENEW_CHUNK):
                args: list[Any] = [self._ttl_ms, self._channel, pool]
                for grant in held[start:start + RENEW_CHUNK]:
                    args.extend((grant.request_id, grant.token))
                alive += int(await self._renew(keys=self._keys(pool), args=args))
        return alive

    async def wait_for_capacity(self, pool: str, timeout_s: float, tenant: str = "") -> None:
        await self._signal.wait(pool, timeout_s)

    async def usage(self, pool: str) -> PoolUsage | None:
        raw = await self._usage(keys=self._keys(pool), args=[self._channel, pool])
        if not raw:
            return None
        state, shares, held, counts = (_pairs(part) for part in raw)
        capacity = PoolCapacity(int(state["rs"]), int(state["rk"]), float(state["oc"]))
        config = PoolConfig(capacity, {tenant: decode_share(value) for tenant, value in shares.items()},
                            decode_share(state["default"]))
        amounts = {tenant: [int(n) for n in value.split()] for tenant, value in held.items()}
        tallies: dict[str, dict[str, int]] = defaultdict(dict)
        for field, value in counts.items():
            kind, tenant = field.split(":", 1)
            tallies[tenant][kind] = int(value)
        tenants = tuple(
            TenantUsage(tenant, config.share_of(tenant), Amount(*amounts[tenant][:2]) if tenant in amounts else ZERO,
                        amounts[tenant][2] if tenant in amounts else 0,
                        tallies[tenant].get("admitted", 0), tallies[tenant].get("expired", 0),
                        {reason: n for reason, n in tallies[tenant].items() if reason in REFUSAL_REASONS})
            for tenant in sorted(shares.keys() | amounts.keys() | tallies.keys())
        )
        in_flight = Amount(int(state.get("us", 0)), int(state.get("uk", 0)))
        committed = Amount(int(state.get("ms", 0)), int(state.get("mk", 0)))
        return PoolUsage(pool, config, in_flight, committed, tenants)

    async def aclose(self) -> None:
        await self._signal.aclose()


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
