"""Pools of simulated engines scripted to fail, hang and slow down, behind the real gateway app."""

from __future__ import annotations

import asyncio
import time

import orjson

from inferlab.testing import SimulatorScript

from .harness import cluster

FAST_HEALTH = {"probe_interval_s": 0.1, "probe_timeout_s": 0.5, "failure_threshold": 2,
               "ejection_base_s": 0.3, "ejection_max_s": 2.0, "scrape_interval_s": 0.1}


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_breaker_opens_on_failures_and_closes_after_recovery() -> None:
    async with cluster(2, health=FAST_HEALTH, routing={"strategy": "round_robin"}) as c:
        c.sims[0].script.fail_status, c.sims[0].script.fail_next = 500, -1
        statuses = [(await c.chat())[0] for _ in range(10)]
        assert statuses == [200] * 10  # every failure happened before the first byte: failed over
        replica = (await c.backends())["replicas"][0]
        assert replica["breaker"]["state"] == "open" and replica["breaker"]["opened_total"] >= 1
        async with c.http.get(c.url("/metrics")) as response:
            metrics = await response.text()
        assert f'inferlab_replica_breaker_open{{model="sim-model",replica="{replica["name"]}"}} 1.0' in metrics
        assert 'inferlab_retries_total{model="sim-model",reason="retry"}' in metrics
        failed_calls = c.sims[0].requests_total
        assert failed_calls <= 4  # ejected after 2 consecutive failures; maybe one failed trial

        c.sims[0].script.fail_next = 0  # it recovers

        async def closed() -> bool:
            await c.chat()
            return bool((await c.backends())["replicas"][0]["breaker"]["state"] == "closed")

        await wait_for(closed)
        before = c.sims[0].requests_total
        for _ in range(4):
            assert (await c.chat())[0] == 200
        assert c.sims[0].requests_total > before  # it takes traffic again


async def test_retry_budget_is_respected() -> None:
    retry = {"max_attempts": 3, "budget_ratio": 0.0, "budget_min_per_s": 0.0}
    health = {**FAST_HEALTH, "failure_threshold": 1000}
    async with cluster(3, retry=retry, health=health) as c:
        for sim in c.sims:
            sim.script.fail_status, sim.script.fail_next = 500, -1
        results = [await c.chat() for _ in range(10)]
        assert all(status == 502 for status, _, _ in results)
        assert sum(c.served()) <= 10 + 1  # one banked retry, no more
        pool = await c.backends()
        assert pool["retry_budget"]["refused"] >= 9


async def test_hanging_replica_costs_at_most_one_attempt_timeout() -> None:
    retry = {"attempt_timeout_s": 0.5, "first_byte_timeout_s": 0.5}
    async with cluster(2, retry=retry, health=FAST_HEALTH, routing={"strategy": "round_robin"}) as c:
        c.sims[0].script.hang = True

        async def timed(stream: bool) -> tuple[int, float]:
            started = time.monotonic()
            status, _, _ = await c.chat(stream=stream)
            return status, time.monotonic() - started

        results = await asyncio.gather(*(timed(i % 2 == 0) for i in range(8)))
        assert all(status == 200 for status, _ in results)
        assert max(elapsed for _, elapsed in results) < 0.5 + 1.0  # one timeout, then a fast replica


async def test_nothing_healthy_answers_503_at_once() -> None:
    async with cluster(2, health={**FAST_HEALTH, "failure_threshold": 1, "ejection_base_s": 5.0}) as c:
        for sim in c.sims:
            sim.script.fail_status, sim.script.fail_next = 500, -1
        for _ in range(2):
            await c.chat()
        started = time.monotonic()
        status, body, headers = await c.chat()
        assert status == 503 and time.monotonic() - started < 0.5
        assert int(headers["Retry-After"]) >= 1 and body["error"]["type"] == "service_unavailable"


async def test_stream_cut_mid_way_ends_with_one_error_event() -> None:
    async with cluster(1) as c:
        c.sims[0].script.cut_after_tokens = 2
        c.sims[0].script.completion_tokens = 10
        status, events, _ = await c.chat(stream=True, max_tokens=10)
        assert status == 200
        errors = [e for e in events if e != "[DONE]" and "error" in orjson.loads(e)]
        assert len(errors) == 1 and events[-1] != "[DONE]"
        assert (await c.backends())["replicas"][0]["failures"] == 1


async def test_prefix_aware_keeps_a_shared_prefix_together_and_spreads_under_overload() -> None:
    system = "You are InferLab's test assistant. Answer briefly and precisely. " * 60  # ~4,000 chars
    routing = {"strategy": "prefix_aware"}
    async with cluster(2, routing=routing, health=FAST_HEALTH) as c:
        for i in range(10):
            assert (await c.chat(f"question {i}", system=system))[0] == 200
        served = c.served()
        assert sorted(served) == [0, 10], served  # balanced (sequential): one replica has it all
        home = served.index(10)

        # overload: the home replica gets slow, a burst arrives; requests spill to the other one
        c.sims[home].script.token_delay_s = 0.1
        statuses = await asyncio.gather(*(c.chat(f"burst {i}", system=system) for i in range(12)))
        assert all(s == 200 for s, _, _ in statuses)
        burst = [after - before for after, before in zip(c.served(), served, strict=True)]
        assert burst[1 - home] >= 3, burst
        stats = (await c.backends())["routing_stats"]
        assert stats["prefix_hits"] >= 9 and stats["balance_fallbacks"] >= 1


async def test_queue_full_is_503_and_waiters_are_served_in_order() -> None:
    script = SimulatorScript(completion_tokens=2, prefill_delay_s=0.2)
    async with cluster(1, scripts=[script], max_concurrency_per_replica=1,
                       queue={"max_depth": 3, "max_wait_s": 10}) as c:
        done: list[str] = []

        async def send(tag: str) -> int:
            status, _, _ = await c.chat(tag)
            done.append(tag)
            return status

        tasks = []
        for i in range(4):  # one runs, three wait
            tasks.append(asyncio.create_task(send(f"r{i}")))
            await asyncio.sleep(0.03)
        status, body, headers = await c.chat("one too many")
        assert status == 503 and int(headers["Retry-After"]) >= 1 and body["error"]["code"] == "queue_full"
        assert await asyncio.gather(*tasks) == [200] * 4
        assert done == ["r0", "r1", "r2", "r3"]
        assert c.sims[0].max_in_flight_seen == 1
        async with c.http.get(c.url("/metrics")) as response:
            metrics = await response.text()
        assert 'inferlab_queue_depth{model="sim-model"} 0.0' in metrics
        assert 'inferlab_queue_wait_seconds_count{model="sim-model",outcome="dispatched"} 3.0' in metrics
        assert 'inferlab_queue_wait_seconds_count{model="sim-model",outcome="rejected"} 1.0' in metrics
        queue = (await c.backends())["queue"]
        assert (queue["depth"], queue["max_depth"], queue["max_wait_s"]) == (0, 3, 10.0)
        assert (queue["queued_total"], queue["rejected_total"], queue["timed_out_total"]) == (3, 1, 0)


async def test_queue_wait_times_out_with_503() -> None:
    script = SimulatorScript(completion_tokens=2, prefill_delay_s=1.0)
    async with cluster(1, scripts=[script], max_concurrency_per_replica=1,
                       queue={"max_depth": 8, "max_wait_s": 0.2}) as c:
        first = asyncio.create_task(c.chat("slow"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        status, body, headers = await c.chat("waits too long")
        assert status == 503 and body["error"]["code"] == "queue_timeout" and "Retry-After" in headers
        assert time.monotonic() - started < 0.6
        assert (await first)[0] == 200
        assert (await c.backends())["queue"]["timed_out_total"] == 1


async def test_load_scraper_reads_engine_metrics() -> None:
    script = SimulatorScript(completion_tokens=2, prefill_delay_s=1.0, max_concurrency=1)
    async with cluster(1, scripts=[script], health=FAST_HEALTH) as c:
        tasks = [asyncio.create_task(c.chat(f"q{i}")) for i in range(3)]

        async def scraped() -> bool:
            load = (await c.backends())["replicas"][0]["load"]
            return bool(load["running"] == 1 and load["waiting"] == 2)

        await wait_for(scraped, timeout=3)
        await asyncio.gather(*tasks)
