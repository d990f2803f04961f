"""Fair-share counters merged through the real Redis: two gateways' counters (two processes' worth
of state in one test) converge on the same totals, a tenant lifted on one holds its floor on the
other, a policy re-sorts on merged values, and a Redis outage keeps what is owed for later."""

from __future__ import annotations

import logging

import pytest

from inferlab.redisconn import redis_client
from inferlab.router import RoutingRequest
from inferlab.scheduler import CounterSync, SharedCounters, make_policy
from inferlab.testing.pytest_plugin import RedisNamespace

LOG = logging.getLogger("test")


def syncer(namespace: RedisNamespace, counters: SharedCounters, client: object | None = None) -> CounterSync:
    return CounterSync(client or namespace.client, {"m": counters}, prefix=namespace.prefix, interval_s=0.05,
                       ttl_s=60, logger=LOG)


async def test_two_gateways_converge_on_the_same_totals(redis_namespace: RedisNamespace) -> None:
    one, two = SharedCounters(), SharedCounters()
    sync_one, sync_two = syncer(redis_namespace, one), syncer(redis_namespace, two)
    one.add("a", 30.0)
    two.add("a", 12.0)
    two.add("b", 5.0)
    await sync_one.sync_once()
    await sync_two.sync_once()
    await sync_one.sync_once()
    assert one.value("a") == two.value("a") == 42.0
    assert one.value("b") == two.value("b") == 5.0
    one.add("a", 1.0)  # after a merge, local work is added on top of the shared total
    assert one.value("a") == 43.0
    await sync_one.sync_once()
    await sync_two.sync_once()
    assert two.value("a") == 43.0 and two.generation == 2  # one per merge: a policy re-sorts after each


async def test_a_lift_on_one_gateway_is_a_floor_on_the_other(redis_namespace: RedisNamespace) -> None:
    one, two = SharedCounters(), SharedCounters()
    one.add("busy", 100.0)
    one.lift("newcomer", 100.0)  # it started waiting on gateway one: no credit for its idle time
    await syncer(redis_namespace, one).sync_once()
    await syncer(redis_namespace, two).sync_once()
    assert two.value("newcomer") == 100.0
    two.lift("newcomer", 50.0)  # a lower floor changes nothing
    await syncer(redis_namespace, two).sync_once()
    assert two.value("newcomer") == 100.0


async def test_a_policy_orders_by_the_merged_counters(redis_namespace: RedisNamespace) -> None:
    here, elsewhere = SharedCounters(), SharedCounters()
    policy = make_policy("vtc", aging_s=None, horizon_s=30, counters=here)

    class Waiter:
        def __init__(self, tenant: str, seq: int) -> None:
            self.request = RoutingRequest({}, tenant=tenant)
            self.exclude: frozenset[str] = frozenset()
            self.enqueued_at, self.seq, self.queued = 0.0, seq, True

    policy.push(Waiter("a", 0))
    policy.push(Waiter("b", 1))
    elsewhere.add("a", 500.0)  # the other gateway served a lot of a
    await syncer(redis_namespace, elsewhere).sync_once()
    await syncer(redis_namespace, here).sync_once()
    head = policy.peek(0.0)
    assert head is not None and head.request.tenant == "b"


async def test_while_redis_is_down_the_counters_stay_local_and_owed(redis_namespace: RedisNamespace) -> None:
    counters = SharedCounters()
    down = redis_client("redis://127.0.0.1:1/0", timeout_s=0.2)
    try:
        counters.add("a", 7.0)
        with pytest.raises(Exception):  # noqa: B017 - the client's connection error, whatever its class
            await syncer(redis_namespace, counters, down).sync_once()
        assert counters.value("a") == 7.0
    finally:
        await down.aclose()
    other = SharedCounters()
    await syncer(redis_namespace, counters).sync_once()  # Redis back: what was owed is merged
    await syncer(redis_namespace, other).sync_once()
    assert other.value("a") == 7.0
