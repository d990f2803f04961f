"""The chain itself: steps run outermost first, clean-ups newest first and exactly once."""

from __future__ import annotations

import asyncio

import pytest

from inferlab.errors import InferLabError, UpstreamError
from inferlab.pipeline import SUCCESS, Call, Chain, Ending, EndKind, Next, Reply, only_for, routes
from inferlab.types import Caller, InferenceResponse, RequestKind


def new_call() -> Call:
    return Call("r1", RequestKind.CHAT, "/v1/chat/completions", "m", {"model": "m"}, Caller())


class Recording:
    def __init__(self, name: str, log: list[str], fail: BaseException | None = None) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        self.log.append(f"enter {self.name}")

        def cleanup(ending: Ending) -> None:
            self.log.append(f"cleanup {self.name} {ending.kind.value}")

        call.defer(cleanup)
        if self.fail is not None:
            raise self.fail
        return await call_next(call)


class Answer:
    async def __call__(self, call: Call, call_next: Next) -> Reply:
        return Reply(response=InferenceResponse({"ok": True}, None))


async def test_order_and_cleanups_once_on_success() -> None:
    log: list[str] = []
    call = new_call()
    reply = await Chain([Recording("a", log), Recording("b", log), Answer()])(call)
    assert reply.response is not None and reply.response.encoded() == b'{"ok":true}'
    assert log == ["enter a", "enter b"]
    await call.end(SUCCESS)
    await call.end(Ending(EndKind.ERROR))  # a second end does nothing
    assert log == ["enter a", "enter b", "cleanup b success", "cleanup a success"]


async def test_an_error_inside_the_chain_runs_the_cleanups_before_it_propagates() -> None:
    log: list[str] = []
    call = new_call()
    errors: list[BaseException | None] = []
    call.defer(lambda ending: errors.append(ending.error))  # the last clean-up to run
    with pytest.raises(UpstreamError):
        await Chain([Recording("a", log), Recording("b", log, UpstreamError("boom")), Answer()])(call)
    assert log == ["enter a", "enter b", "cleanup b error", "cleanup a error"]
    assert len(errors) == 1 and isinstance(errors[0], UpstreamError)  # the clean-ups were handed the error
    assert call.ended is not None and call.ended.kind is EndKind.ERROR
    assert call.ended.error is None  # let go once they ran: its traceback's frames hold the call


async def test_cancellation_is_an_ending_of_its_own() -> None:
    log: list[str] = []
    call = new_call()
    with pytest.raises(asyncio.CancelledError):
        await Chain([Recording("a", log), Recording("b", log, asyncio.CancelledError())])(call)
    assert log[-2:] == ["cleanup b cancelled", "cleanup a cancelled"]


async def test_a_failing_cleanup_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    call = new_call()

    def broken(ending: Ending) -> None:
        raise RuntimeError("cleanup bug")

    call.defer(lambda ending: log.append("first"))
    call.defer(broken)
    await call.end(SUCCESS)
    assert log == ["first"] and "a clean-up failed" in caplog.text


async def test_a_chain_nobody_answers_is_an_internal_error() -> None:
    with pytest.raises(InferLabError):
        await Chain([])(new_call())


async def test_a_route_scoped_step_is_in_its_routes_chains_only() -> None:
    log: list[str] = []
    chain = Chain([Recording("all", log), only_for([routes.CODE_REVIEW, routes.CODE_DOCS], Recording("code", log)),
                   Recording("last", log), Answer()])
    await chain(new_call())
    assert log == ["enter all", "enter last"]
    log.clear()
    review = Call("r2", RequestKind.CHAT, routes.CODE_REVIEW, "m", {"model": "m"}, Caller())
    await chain(review)
    assert log == ["enter all", "enter code", "enter last"]
    await review.end(SUCCESS)
    assert log[-3:] == ["cleanup last success", "cleanup code success", "cleanup all success"]


async def test_a_route_scoped_step_run_on_its_own_passes_other_routes_on() -> None:
    log: list[str] = []
    scoped = only_for([routes.RESPONSES], Recording("responses", log))

    async def answer(call: Call) -> Reply:
        return Reply(response=InferenceResponse({"route": call.route}, None))

    assert (await scoped(new_call(), answer)).response is not None and log == []
    await scoped(Call("r3", RequestKind.CHAT, routes.RESPONSES, "m", {"model": "m"}, Caller()), answer)
    assert log == ["enter responses"]
