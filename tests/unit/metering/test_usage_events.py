"""One usage event per call that reaches the chain, through the real gateway in front of the
engine simulator — successes, refusals by later steps, engine errors, a client leaving mid-stream,
a cancellation while queued, cache hits — with the tokens the engine reported or, when it
reported none, counted with its tokenizer (``/tokenize``), and the rate limiter settled from the
same numbers. Requests refused before the chain (400 validation) leave none."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.backends.tokenize import LlamaServerTokenizer
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.codec import decode
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import free_port

MODEL = "sim-model"
PROMPT = "count the simulated words please"  # 5 words: the simulator's prompt tokens


@dataclass
class Rig:
    server: TestServer
    sim: EngineSimulator
    settled: list[tuple[int, int]] = field(default_factory=list)  # what the limiter settled, in order

    @property
    def services(self) -> Any:
        return self.server.app[SERVICES]

    async def events(self, expected: int) -> list[UsageEvent]:
        """Every event in the outbox (shipped or not) once ``expected`` are there: calls end after
        their answer, a little later."""
        outbox = self.services.metering.outbox
        for _ in range(200):
            await outbox.flush(5.0)
            if len(found := all_events(outbox.path)) >= expected:
                await asyncio.sleep(0.05)  # nothing more arrives
                await outbox.flush(5.0)
                return all_events(outbox.path)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(found)} usage events, expected {expected}")


def all_events(path: Path) -> list[UsageEvent]:
    connection = sqlite3.connect(path)
    try:
        return [decode(payload) for (payload,) in connection.execute("SELECT payload FROM usage_outbox ORDER BY seq")]
    finally:
        connection.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sim = EngineSimulator(SimulatorScript(completion_tokens=8), model=MODEL)
    await sim.start()
    settings = Settings(
        data_dir=tmp_path,
        features={"ratelimit": True, "cache": True},
        ratelimit={"limits": [{"scope": "key", "rpm": 10_000, "max_concurrent": 50}]},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1", "max_concurrency_per_replica": 2}],
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    rig = Rig(server, sim)
    admission = rig.services.limits.admission
    finish = admission.finish

    async def settled(ticket: Any, usage: tuple[int, int]) -> None:
        rig.settled.append(usage)
        await finish(ticket, usage)

    admission.finish = settled
    try:
        yield rig
    finally:
        await server.close()
        await sim.stop()


def chat(stream: bool, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": stream, **extra}


async def post(rig: Rig, payload: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, \
            session.post(rig.server.make_url("/v1/chat/completions"), json=payload, headers=headers) as response:
        return response.status, await response.read()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_leaves_one_event_with_the_engines_usage(rig: Rig, stream: bool) -> None:
    status, _ = await post(rig, chat(stream), {"x-request-id": "client-chosen-id"})
    assert status == 200
    [event] = await rig.events(1)
    assert (event.status, event.http_status, event.token_source) == (EventStatus.SUCCESS, 200, TokenSource.ENGINE)
    assert (event.prompt_tokens, event.completion_tokens) == (5, 8)
    assert (event.tenant, event.tier, event.route, event.model, event.replica) == (
        "default", "enterprise", "/v1/chat/completions", MODEL, MODEL)
    assert event.request_id == "client-chosen-id" and event.id != event.request_id  # the id is the gateway's
    assert event.queue_ms == 0.0 and event.duration_ms > 0
    assert (event.ttft_ms is not None) == stream
    assert rig.settled == [(5, 8)]  # the limiter settled the event's numbers


async def test_a_clients_request_id_reused_still_gives_each_call_its_own_event(rig: Rig) -> None:
    for _ in range(3):
        await post(rig, chat(False), {"x-request-id": "same"})
    events = await rig.events(3)
    assert len({event.id for event in events}) == 3 and {event.request_id for event in events} == {"same"}


async def test_refusals_by_later_steps_and_engine_errors_leave_one_event_each(rig: Rig) -> None:
    assert (await post(rig, {**chat(False), "model": "no-such-model"}))[0] == 404
    rig.sim.script.update({"fail_status": 503, "fail_next": -1})
    assert (await post(rig, chat(True)))[0] == 502
    assert (await post(rig, chat(False)))[0] == 502
    events = await rig.events(3)
    assert [(e.status, e.http_status, e.token_source) for e in events] == [(EventStatus.ERROR, 404, TokenSource.NONE)] + [
        (EventStatus.ERROR, 502, TokenSource.NONE)] * 2
    assert [(e.prompt_tokens, e.completion_tokens) for e in events] == [(0, 0)] * 3  # failed before output: free
    assert events[0].replica is None and events[1].replica == MODEL
    assert rig.settled == [(0, 0), (0, 0)]


async def test_a_request_refused_before_the_chain_leaves_none(rig: Rig) -> None:
    assert (await post(rig, {"model": MODEL, "messages": "not a list"}))[0] == 400
    assert (await post(rig, chat(False)))[0] == 200
    assert [e.status for e in await rig.events(1)] == [EventStatus.SUCCESS]


async def test_a_client_leaving_mid_stream_is_charged_the_tokens_actually_generated(rig: Rig) -> None:
    rig.sim.script.update({"token_delay_s": 0.05, "completion_tokens": 200})
    async with aiohttp.ClientSession() as session:
        response = await session.post(rig.server.make_url("/v1/chat/completions"), json=chat(True))
        for _ in range(6):
            await response.content.readline()  # three events (each a line and a blank line)
        response.close()
    [event] = await rig.events(1)
    generated = rig.sim.stats.streamed_tokens_total
    assert 3 <= generated < 20
    assert (event.status, event.http_status, event.token_source) == (EventStatus.DISCONNECT, 499, TokenSource.TOKENIZER)
    assert (event.prompt_tokens, event.completion_tokens) == (5, generated)
    assert rig.settled == [(5, generated)]


@pytest.mark.parametrize("stream", [False, True])
async def test_an_engine_that_reports_no_usage_is_counted_with_its_tokenizer(rig: Rig, stream: bool) -> None:
    rig.sim.script.update({"report_usage": False, "completion_tokens": 13})
    assert (await post(rig, chat(stream)))[0] == 200
    [event] = await rig.events(1)
    assert (event.token_source, event.prompt_tokens, event.completion_tokens) == (TokenSource.TOKENIZER, 5, 13)
    assert rig.settled == [(5, 13)]
    assert rig.sim.stats.tokenize_total >= 2  # the chat template, then the tokens


async def test_without_a_tokenizer_the_estimate_is_used_and_marked(rig: Rig) -> None:
    rig.sim.script.update({"report_usage": False})
    closed = LlamaServerTokenizer(rig.services.metering.step.tokenizers._tokenizers[MODEL]._session,
                                  f"http://127.0.0.1:{free_port()}")  # nothing listens there
    rig.services.metering.step.tokenizers = {MODEL: closed}
    assert (await post(rig, chat(True)))[0] == 200
    [event] = await rig.events(1)
    assert event.token_source is TokenSource.ESTIMATE and event.completion_tokens == 9  # a token a chunk
    assert rig.settled == [(event.prompt_tokens, event.completion_tokens)]


async def test_a_call_cancelled_while_queued_used_nothing_and_one_that_waited_says_how_long(rig: Rig) -> None:
    rig.sim.script.update({"token_delay_s": 0.1, "completion_tokens": 5})
    async with aiohttp.ClientSession() as session:
        busy = [asyncio.create_task(post(rig, chat(False))) for _ in range(2)]  # the replica's two slots
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(session.post(rig.server.make_url("/v1/chat/completions"), json=chat(False)))
        await asyncio.sleep(0.1)
        waiting.cancel()  # the client gives up while the call waits for a slot
        served = asyncio.create_task(post(rig, chat(False)))
        await asyncio.gather(*busy, served, return_exceptions=True)
    events = await rig.events(4)
    gone = [e for e in events if e.status is EventStatus.DISCONNECT]
    assert len(gone) == 1 and gone[0].replica is None and gone[0].token_source is TokenSource.NONE
    assert (gone[0].prompt_tokens, gone[0].completion_tokens) == (0, 0)
    assert max(e.queue_ms or 0 for e in events if e.status is EventStatus.SUCCESS) > 50


async def test_a_cache_hit_used_no_engine(rig: Rig) -> None:
    for _ in range(2):
        assert (await post(rig, chat(False, temperature=0)))[0] == 200
    events = await rig.events(2)
    assert [(e.token_source, e.prompt_tokens, e.status) for e in events] == [
        (TokenSource.ENGINE, 5, EventStatus.SUCCESS), (TokenSource.NONE, 0, EventStatus.SUCCESS)]


async def test_concurrent_mixed_calls_leave_exactly_one_event_each(rig: Rig) -> None:
    rig.sim.script.update({"token_delay_s": 0.002})
    payloads = [chat(i % 2 == 0) for i in range(30)] + [{**chat(False), "model": "nope"} for _ in range(5)]
    statuses = await asyncio.gather(*(post(rig, p) for p in payloads))
    events = await rig.events(35)
    assert len(events) == 35 == len({event.id for event in events})
    assert sorted(e.http_status for e in events) == sorted(status for status, _ in statuses)


async def test_a_stream_the_drain_ends_is_charged_what_was_generated(rig: Rig) -> None:
    """The drain's deadline ends the stream with an error event (503): so is it recorded."""
    rig.sim.script.update({"token_delay_s": 0.05, "completion_tokens": 100})
    async with aiohttp.ClientSession() as session:
        response = await session.post(rig.server.make_url("/v1/chat/completions"), json=chat(True))
        for _ in range(4):
            await response.content.readline()
        rig.services.drain.begin()
        assert rig.services.drain.abort_all() == 1
        await response.read()
    [event] = await rig.events(1)
    assert (event.status, event.http_status, event.token_source) == (EventStatus.ERROR, 503, TokenSource.TOKENIZER)
    assert (event.prompt_tokens, event.completion_tokens) == (5, rig.sim.stats.streamed_tokens_total)
    assert rig.settled == [(5, event.completion_tokens)]


def test_the_event_records_the_registry_version_that_served_the_call() -> None:
    from inferlab.metering.step import MeterUsage
    from inferlab.pipeline import SUCCESS, Call
    from inferlab.types import Caller, RequestKind

    call = Call(request_id="r1", kind=RequestKind.CHAT, route="/v1/chat/completions", model="chat", body={},
                caller=Caller())
    call.model_version = "v-3f2a"  # as the registry's ResolveVersion step leaves it
    step = MeterUsage(recorder=None, tokenizers={})  # type: ignore[arg-type]  # only the event is made here
    assert step.event(call, "e1", SUCCESS).model_version == "v-3f2a"
    call.model_version = None  # a configured model the registry does not know
    assert step.event(call, "e2", SUCCESS).model_version is None
