"""Retries before the first byte, the retry budget, attempt timeouts — with fake replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inferlab.errors import EngineBusy, EngineMisconfigured, EngineRejected, UpstreamError, UpstreamTimeout
from inferlab.router import (
    BackendPool,
    BreakerPolicy,
    Failover,
    Replica,
    RetryBudget,
    RetryPolicy,
    RoundRobinStrategy,
    RoutingRequest,
)
from inferlab.router.replica import MISCONFIGURED_RECHECK_S
from inferlab.scheduler import WaitQueues
from inferlab.types import InferenceRequest, RequestKind, StreamChunk

from .fakes import FakeBackend

INFERENCE = InferenceRequest(RequestKind.CHAT, "m", {}, "id")


@pytest.fixture
def failover() -> Failover:
    return Failover(WaitQueues())


def pool_of(*backends: FakeBackend, budget: RetryBudget | None = None, retry: RetryPolicy | None = None) -> BackendPool:
    replicas = [Replica(b, limit=8, breaker=BreakerPolicy(failure_threshold=2, probe_gated=False)) for b in backends]
    return BackendPool("m", replicas, retry_budget=budget, retry=retry)


async def test_failure_before_first_byte_fails_over(failover: Failover) -> None:
    bad, good = FakeBackend("bad"), FakeBackend("good")
    bad.fail = -1
    pool = pool_of(bad, good)
    for _ in range(6):
        result = await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))
        assert result.body == {"replica": "good"}
    assert bad.calls == 2  # two failures opened its breaker; then it was skipped


async def test_engine_4xx_is_not_retried(failover: Failover) -> None:
    a, b = FakeBackend("a"), FakeBackend("b")
    a.reject = b.reject = True
    pool = pool_of(a, b)
    with pytest.raises(EngineRejected):
        await failover.run(pool, RoutingRequest({}), lambda be: be.complete(INFERENCE))
    assert a.calls + b.calls == 1


async def test_retry_budget_bounds_retries(failover: Failover) -> None:
    now = [0.0]
    budget = RetryBudget(ratio=0.1, min_per_s=0.0, cap=2.0, clock=lambda: now[0])
    backends = [FakeBackend(f"r{i}") for i in range(3)]
    for backend in backends:
        backend.fail = -1
    pool = BackendPool("m", [Replica(b, breaker=BreakerPolicy(failure_threshold=1000)) for b in backends],
                       retry_budget=budget, retry=RetryPolicy(max_attempts=3))
    requests = 20
    for _ in range(requests):
        with pytest.raises(UpstreamError):
            await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))
    attempts = sum(b.calls for b in backends)
    assert attempts - requests <= 2.0 + 0.1 * requests  # initial balance + deposits
    assert budget.refused > 0


async def test_hanging_replica_times_out_and_fails_over(failover: Failover) -> None:
    hung, good = FakeBackend("hung"), FakeBackend("good")
    hung.hang = True
    pool = pool_of(hung, good, retry=RetryPolicy(attempt_timeout_s=0.05, first_byte_timeout_s=0.05))
    results = [await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE)) for _ in range(4)]
    assert all(r.body == {"replica": "good"} for r in results)
    opened = await failover.open_stream(pool, RoutingRequest({}), INFERENCE)
    assert opened.first is not None and opened.first.data == {"replica": "good"}
    await opened.chunks.aclose()  # type: ignore[attr-defined]


async def test_single_replica_timeout_surfaces_as_504(failover: Failover) -> None:
    hung = FakeBackend("hung")
    hung.hang = True
    pool = pool_of(hung, retry=RetryPolicy(attempt_timeout_s=0.05))
    with pytest.raises(UpstreamTimeout):
        await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))
    assert pool.replicas[0].in_flight == 0


async def test_engine_busy_fails_over_without_counting_against_the_replica(failover: Failover) -> None:
    busy, good = FakeBackend("busy"), FakeBackend("good")
    busy.error = EngineBusy("overloaded", retry_after=7)
    pool = pool_of(busy, good)
    for _ in range(4):
        assert (await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))).body == {"replica": "good"}
    assert busy.calls >= 2  # never ejected: a busy replica is not a broken one
    assert pool.replicas[0].breaker.consecutive_failures == 0 and pool.replicas[0].failures == 0


async def test_engine_busy_everywhere_is_the_engines_429(failover: Failover) -> None:
    only = FakeBackend("only")
    only.error = EngineBusy("overloaded", retry_after=7)
    pool = pool_of(only)
    with pytest.raises(EngineBusy) as raised:
        await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))
    assert raised.value.status == 429 and raised.value.headers()["Retry-After"] == "7"
    assert pool.replicas[0].in_flight == 0


async def test_misconfigured_replica_leaves_routing_until_its_recheck(failover: Failover) -> None:
    now = [100.0]
    bad, good = FakeBackend("bad"), FakeBackend("good")
    bad.error = EngineMisconfigured("misconfigured", reason="engine rejected the gateway's credentials (HTTP 401)")
    replicas = [Replica(b, breaker=BreakerPolicy(failure_threshold=1)) for b in (bad, good)]
    pool = BackendPool("m", replicas, strategy=RoundRobinStrategy(), clock=lambda: now[0])
    for _ in range(4):
        assert (await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))).body == {"replica": "good"}
    assert bad.calls == 1
    snapshot = pool.snapshot()["replicas"][0]
    assert snapshot["misconfigured"] is True and snapshot["error"].endswith("(HTTP 401)")
    assert snapshot["breaker"]["state"] == "closed" and not snapshot["healthy"]
    now[0] += MISCONFIGURED_RECHECK_S
    bad.error = None  # the operator fixed it: the re-check finds out
    served = {(await failover.run(pool, RoutingRequest({}), lambda b: b.complete(INFERENCE))).body["replica"]
              for _ in range(2)}
    assert served == {"bad", "good"} and pool.snapshot()["replicas"][0]["misconfigured"] is False


async def test_stream_silent_mid_way_ends_with_a_timeout(failover: Failover) -> None:
    class Stalling(FakeBackend):
        async def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
            yield StreamChunk(data={"n": 1})
            await asyncio.Event().wait()
            yield StreamChunk(data={"n": 2})

    pool = pool_of(Stalling("s"), retry=RetryPolicy(stream_idle_timeout_s=0.05))
    opened = await failover.open_stream(pool, RoutingRequest({}), INFERENCE)
    assert opened.first is not None and opened.first.data == {"n": 1}
    with pytest.raises(UpstreamTimeout):
        async with asyncio.timeout(2):
            await anext(opened.chunks)
    await opened.chunks.aclose()  # type: ignore[attr-defined]


class _Sink:
    """A ``FirstSink`` that takes every first event offered."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    @property
    def sent(self) -> bool:
        return bool(self.events)

    def first(self, framed: bytes) -> bool:
        self.events.append(framed)
        return True


class _RelayingStream:
    """Relays its first event, then fails before ``anext`` returns it (a first-byte timer that
    fired meanwhile, say) — or, with ``relay`` False, fails without relaying anything."""

    def __init__(self, relay: bool) -> None:
        self._relay = relay
        self._sink: _Sink | None = None

    def relay_first(self, sink: _Sink) -> None:
        self._sink = sink

    def __aiter__(self) -> _RelayingStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if self._relay and self._sink is not None:
            self._sink.first(b'data: {"choices":[]}\n\n')
        raise UpstreamTimeout("engine did not answer in time")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("relayed", [False, True], ids=["nothing-sent", "first-event-sent"])
async def test_a_stream_whose_first_event_reached_the_client_is_not_failed_over(failover: Failover,
                                                                                relayed: bool) -> None:
    """Before the client has any byte, a failed attempt goes to another replica; once its first event
    was relayed to the client, the failure is the stream's: raised at once, one replica tried."""
    tried: list[str] = []

    class Relaying(FakeBackend):
        def stream(self, request: InferenceRequest) -> _RelayingStream:  # type: ignore[override]
            tried.append(self.name)
            return _RelayingStream(relay=relayed)

    pool = pool_of(Relaying("a"), Relaying("b"), retry=RetryPolicy(max_attempts=2))
    sink = _Sink()
    with pytest.raises(UpstreamTimeout):
        await failover.open_stream(pool, RoutingRequest({}), INFERENCE, sink)
    assert len(tried) == (1 if relayed else 2)
    assert len(sink.events) == (1 if relayed else 0)
    assert sum(replica.in_flight for replica in pool.replicas) == 0  # every lease given back
