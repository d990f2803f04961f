"""Property tests of the allocator (hypothesis state machine), against every implementation.

Random interleavings of admissions (one at a time and in concurrent bursts over two gateways),
request endings (completion; failure, whose handler releases twice; timeout, released by the
other gateway and then by the late completion; client disconnect, racing two releases), admissions
repeated under a held request id, and reconfigurations of capacity and shares while grants are
held. After every step the allocator's own state must equal a reference model's and:

1. guarantees are always honoured: a request within its tenant's guarantee is admitted whenever
   the pool's committed capacity Σ max(used, g) is within its capacity;
2. no tenant exceeds its limit;
3. in flight never exceeds capacity x overcommit;
4. every grant is released exactly once (one ``release`` returns True, every other False) and,
   once all are released, nothing is held.

Bounds 2, 3 and Σ max(used, g) ≤ C hold from the moment they hold: a reconfiguration may lower a
bound under what running grants hold (they are never preempted), after which the excess may only
shrink as those grants end (a ratchet), never grow.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inferlab.resources import (
    ZERO,
    Amount,
    Grant,
    PoolCapacity,
    PoolConfig,
    Refusal,
    ResourceAllocator,
    TenantShare,
)

POOLS = ("p0", "p1")
NAMED = ("gold", "silver", "bronze")
TENANTS = (*NAMED, "stranger")  # the stranger is never named: it gets the default share
ENDINGS = ("completion", "failure", "timeout", "disconnect")
EXAMPLES = {"memory": 30, "redis": 20}  # x 30 steps: ~15 s together on 2 busy cores


@st.composite
def amounts(draw: st.DrawFn, most_sequences: int, most_kv: int) -> Amount:
    return Amount(draw(st.integers(0, most_sequences)), draw(st.integers(0, most_kv)))


@st.composite
def shares(draw: st.DrawFn, named: bool) -> TenantShare:
    guarantee = draw(amounts(4, 300)) if named else ZERO
    limit = draw(st.none() | amounts(4, 300).map(lambda extra: guarantee + extra))
    return TenantShare(guarantee, limit, draw(st.booleans()))


@st.composite
def configs(draw: st.DrawFn) -> PoolConfig:
    capacity = PoolCapacity(draw(st.integers(0, 10)), draw(st.integers(0, 800)), draw(st.sampled_from([1.0, 1.5, 0.6])))
    named = {tenant: draw(shares(True)) for tenant in NAMED if draw(st.booleans())}
    return PoolConfig(capacity, named, draw(shares(False)))


def expected_decision(config: PoolConfig, held: dict[str, Amount], tenant: str, request: Amount) -> str:
    """The rule restated from the issue's words, dimension by dimension, from scratch."""
    share, cap = config.share_of(tenant), config.capacity.effective
    mine = held.get(tenant, ZERO)
    dims = ("sequences", "kv_tokens")

    def get(amount: Amount | None, dim: str) -> float:
        return float("inf") if amount is None else getattr(amount, dim)

    ceiling = {d: min(get(share.limit, d), get(cap, d), get(share.guarantee, d) if not share.may_borrow else float("inf"))
               for d in dims}
    if any(get(request, d) > ceiling[d] for d in dims):
        return "request_too_large"
    if any(get(mine, d) + get(request, d) > get(share.limit, d) for d in dims):
        return "tenant_limit"
    if not share.may_borrow and any(get(mine, d) + get(request, d) > get(share.guarantee, d) for d in dims):
        return "no_borrowing"
    committed = committed_of(config, held)
    for d in dims:
        g, used, r = get(share.guarantee, d), get(mine, d), get(request, d)
        extra = max(used + r, g) - max(used, g)
        if extra > 0 and extra > get(cap, d) - get(committed, d):
            return "pool_full"
    in_flight = sum(held.values(), ZERO)
    if any(get(in_flight, d) + get(request, d) > get(cap, d) for d in dims):
        return "overbooked"
    return "admitted"


def committed_of(config: PoolConfig, held: dict[str, Amount]) -> Amount:
    total = ZERO
    for tenant in set(held) | set(config.shares):
        total = total + held.get(tenant, ZERO).at_least(config.share_of(tenant).guarantee)
    return total


class Gateways:
    """Two allocators over one state: the same instance in memory, two clients on one Redis namespace."""

    def __init__(self, kind: str, redis_url: str | None) -> None:
        self.kind = kind
        self.url = redis_url
        self.prefix = f"test:{uuid.uuid4().hex}:"
        self.clients: list[Any] = []
        self.allocators: list[ResourceAllocator] = []

    async def open(self) -> list[ResourceAllocator]:
        if self.kind == "memory":
            from inferlab.resources import MemoryAllocator

            shared = MemoryAllocator()
            self.allocators = [shared, shared]
            return self.allocators
        from inferlab.redisconn import redis_client
        from inferlab.resources.redis import RedisAllocator

        assert self.url is not None
        for _ in range(2):
            client = redis_client(self.url, timeout_s=5.0, max_connections=16)
            self.clients.append(client)
            self.allocators.append(RedisAllocator(client, self.prefix))
        return self.allocators

    async def close(self) -> None:
        for allocator in {id(a): a for a in self.allocators}.values():
            await allocator.aclose()
        if self.clients:
            keys = [key async for key in self.clients[0].scan_iter(match=self.prefix + "*", count=1000)]
            if keys:
                await self.clients[0].delete(*keys)
        for client in self.clients:
            await client.aclose()


def machine_for(kind: str, redis_url: str | None) -> type[RuleBasedStateMachine]:
    class AllocatorMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.runner = asyncio.Runner()
            self.gateways = Gateways(kind, redis_url)
            self.allocators = self.runner.run(self.gateways.open())
            self.configs: dict[str, PoolConfig] = {}
            self.held: dict[str, dict[str, Amount]] = {pool: {} for pool in POOLS}
            self.outstanding: dict[tuple[str, str], Grant] = {}
            self.releases: Counter[str] = Counter()  # token -> releases that returned True
            self.granted = 0
            self.admitted: Counter[tuple[str, str]] = Counter()
            self.refused: Counter[tuple[str, str, str]] = Counter()
            self.allowance: dict[tuple[str, ...], int] = {}  # bound -> how far held may exceed it (ratchet)
            self.ids = itertools.count()

        def run(self, coroutine: Any) -> Any:
            return self.runner.run(coroutine)

        # -- the model ------------------------------------------------------------------------
        def record(self, result: Grant | Refusal) -> None:
            if isinstance(result, Grant):
                key = (result.pool, result.request_id)
                if key in self.outstanding:
                    return
                self.outstanding[key] = result
                held = self.held[result.pool]
                held[result.tenant] = held.get(result.tenant, ZERO) + result.amount
                self.admitted[(result.pool, result.tenant)] += 1
                self.granted += 1
            else:
                self.refused[(result.pool, result.tenant, result.reason)] += 1

        def forget(self, grant: Grant) -> None:
            del self.outstanding[(grant.pool, grant.request_id)]
            held = self.held[grant.pool]
            left = held[grant.tenant].minus(grant.amount)
            if left:
                held[grant.tenant] = left
            else:
                del held[grant.tenant]

        def bounds(self, pool: str) -> list[tuple[tuple[str, ...], int, int]]:
            """(bound, held, bound value) for every bound of the pool, per dimension."""
            config, held = self.configs[pool], self.held[pool]
            cap = config.capacity.effective
            in_flight, committed = sum(held.values(), ZERO), committed_of(config, held)
            out = []
            for dim in ("sequences", "kv_tokens"):
                out.append((("in_flight", pool, dim), getattr(in_flight, dim), getattr(cap, dim)))
                out.append((("committed", pool, dim), getattr(committed, dim), getattr(cap, dim)))
                for tenant in TENANTS:
                    limit = config.share_of(tenant).limit
                    if limit is not None:
                        out.append((("limit", pool, tenant, dim), getattr(held.get(tenant, ZERO), dim),
                                    getattr(limit, dim)))
            return out

        def reset_allowance(self, pool: str) -> None:
            for key in [k for k in self.allowance if k[1] == pool]:
                del self.allowance[key]
            for key, value, bound in self.bounds(pool):
                self.allowance[key] = max(0, value - bound)

        # -- rules ----------------------------------------------------------------------------
        @initialize(first=configs(), second=configs())
        def configure_pools(self, first: PoolConfig, second: PoolConfig) -> None:
            for pool, config in zip(POOLS, (first, second), strict=True):
                self.run(self.allocators[0].configure(pool, config))
                self.configs[pool] = config
                self.reset_allowance(pool)

        @rule(pool=st.sampled_from(POOLS), config=configs(), via=st.integers(0, 1))
        def reconfigure(self, pool: str, config: PoolConfig, via: int) -> None:
            self.run(self.allocators[via].configure(pool, config))
            self.configs[pool] = config
            self.reset_allowance(pool)

        @rule(pool=st.sampled_from(POOLS), tenant=st.sampled_from(TENANTS), kv=st.integers(0, 160), via=st.integers(0, 1))
        def admit(self, pool: str, tenant: str, kv: int, via: int) -> None:
            config, held = self.configs[pool], self.held[pool]
            request = Amount(1, kv)
            expected = expected_decision(config, held, tenant, request)
            result = self.run(self.allocators[via].try_admit(pool, tenant, kv, f"r{next(self.ids)}"))
            within_guarantee = (held.get(tenant, ZERO) + request).fits_in(config.share_of(tenant).guarantee)
            if within_guarantee and committed_of(config, held).fits_in(config.capacity.effective):
                assert isinstance(result, Grant), f"guarantee not honoured: {result}"
            got = "admitted" if isinstance(result, Grant) else result.reason
            assert got == expected, f"{tenant} asked {request} in {config}, held {held}: {got}, expected {expected}"
            if isinstance(result, Grant):
                mine = held.get(tenant, ZERO)
                assert result.borrowed == (mine + request).minus(config.share_of(tenant).guarantee).minus(
                    mine.minus(config.share_of(tenant).guarantee))
            self.record(result)

        @rule(requests=st.lists(st.tuples(st.sampled_from(POOLS), st.sampled_from(TENANTS), st.integers(0, 160)),
                                min_size=2, max_size=10))
        def burst(self, requests: list[tuple[str, str, int]]) -> None:
            async def all_at_once() -> list[Grant | Refusal]:
                return await asyncio.gather(*(
                    self.allocators[i % 2].try_admit(pool, tenant, kv, f"r{next(self.ids)}")
                    for i, (pool, tenant, kv) in enumerate(requests)
                ))

            for result in self.run(all_at_once()):
                self.record(result)

        @precondition(lambda self: bool(self.outstanding))
        @rule(index=st.integers(0, 1000), ending=st.sampled_from(ENDINGS))
        def end(self, index: int, ending: str) -> None:
            grant = list(self.outstanding.values())[index % len(self.outstanding)]
            first, second = self.allocators
            if ending == "completion":
                results = [self.run(first.release(grant))]
            elif ending == "failure":  # the error path releases, then the finally block again
                results = [self.run(first.release(grant)), self.run(first.release(grant))]
            elif ending == "timeout":  # timed out and released by the other gateway; the late completion after
                results = [self.run(second.release(grant)), self.run(first.release(grant))]
            else:  # the client disconnects while the request completes: two releases race
                async def race() -> list[bool]:
                    return list(await asyncio.gather(first.release(grant), second.release(grant)))

                results = self.run(race())
            assert sorted(results) == [False] * (len(results) - 1) + [True], f"{ending}: {results}"
            self.releases[grant.token] += sum(results)
            self.forget(grant)

        @precondition(lambda self: bool(self.outstanding))
        @rule(index=st.integers(0, 1000), via=st.integers(0, 1))
        def admit_a_held_request_again(self, index: int, via: int) -> None:
            grant = list(self.outstanding.values())[index % len(self.outstanding)]
            again = self.run(self.allocators[via].try_admit(grant.pool, grant.tenant, grant.amount.kv_tokens,
                                                            grant.request_id))
            assert again == grant

        # -- invariants -----------------------------------------------------------------------
        @invariant()
        def state_matches_the_model_and_the_bounds_hold(self) -> None:
            if not self.configs:
                return
            for pool in POOLS:
                usage = self.run(self.allocators[1].usage(pool))
                assert usage is not None
                held = self.held[pool]
                assert usage.config == self.configs[pool]
                assert usage.in_flight == sum(held.values(), ZERO)
                assert usage.committed == committed_of(self.configs[pool], held)
                for tenant in TENANTS:
                    mine = usage.tenant(tenant)
                    assert mine.held == held.get(tenant, ZERO), tenant
                    assert mine.admitted == self.admitted[(pool, tenant)]
                    assert dict(mine.refused) == {reason: n for (p, t, reason), n in self.refused.items()
                                                  if p == pool and t == tenant}
                for key, value, bound in self.bounds(pool):
                    excess = value - bound
                    assert excess <= self.allowance[key], f"{key}: {value} > {bound} (+{self.allowance[key]})"
                    self.allowance[key] = max(0, excess)

        def teardown(self) -> None:
            try:
                for grant in list(self.outstanding.values()):
                    assert self.run(self.allocators[0].release(grant))
                    assert not self.run(self.allocators[1].release(grant))
                    self.releases[grant.token] += 1
                    self.forget(grant)
                assert len(self.releases) == self.granted and set(self.releases.values()) <= {1}
                for pool in POOLS if self.configs else ():
                    usage = self.run(self.allocators[0].usage(pool))
                    assert usage is not None and usage.in_flight == ZERO
                    assert all(t.held == ZERO and t.grants == 0 for t in usage.tenants)
            finally:
                self.run(self.gateways.close())
                self.runner.close()

    return AllocatorMachine


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_random_interleavings_keep_every_invariant(kind: str, request: pytest.FixtureRequest) -> None:
    redis_url = str(request.getfixturevalue("redis_url")) if kind == "redis" else None
    run_state_machine_as_test(machine_for(kind, redis_url), settings=settings(
        max_examples=EXAMPLES[kind], stateful_step_count=30, deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # explain traces every line: minutes
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
