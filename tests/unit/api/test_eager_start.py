"""Each request's handler started at once on Python 3.11 (``api/eager_start.py``): the handler's
first step runs inside ``create_task``, as that task, in its own context; the task then carries
it on, a cancellation in between reaching the handler where it waits. Driven by aiohttp's own
``RequestHandler._handle_request`` coroutine (the one the factory starts eagerly), on asyncio's
loop and on uvloop, and through a real ``GatewayRunner`` on a socket."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from inferlab.api import eager_start
from inferlab.api.eager_start import start_handlers_eagerly, stop_starting_handlers_eagerly
from inferlab.api.http_server import GatewayRunner
from inferlab.config import ServerSettings

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 and later start handlers eagerly themselves")

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Protocol:
    """What ``RequestHandler._handle_request`` reads and calls on its connection."""

    def __init__(self) -> None:
        self._request_in_progress = False
        self._current_request: object = None
        self._handler_waiter: asyncio.Future[None] | None = None
        self.errors: list[int] = []

    async def finish_response(self, request: object, response: object, start_time: object) -> tuple[object, bool]:
        return response, False

    def handle_error(self, request: object, status: int, exc: BaseException | None = None) -> str:
        self.errors.append(status)
        return f"error {status}"


def handle_request(handler: Callable[[object], Awaitable[object]]) -> Any:
    """The coroutine aiohttp's connection task makes for each request."""
    return RequestHandler._handle_request(Protocol(), "request", None, handler)  # type: ignore[arg-type]


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop = LOOPS[request.param]()
    assert start_handlers_eagerly(loop)
    yield loop
    stop_starting_handlers_eagerly(loop)
    assert loop.get_task_factory() is None
    loop.close()


def test_the_first_step_runs_inside_create_task_as_the_new_task(loop: asyncio.AbstractEventLoop) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: object) -> str:
        seen["task"] = asyncio.current_task()
        seen["var"] = VAR.get()
        VAR.set("handler's")
        seen["gate"] = gate = loop.create_future()
        await gate
        seen["after"] = asyncio.current_task()
        return "answer"

    async def connection() -> None:
        VAR.set("connection's")
        me = asyncio.current_task()
        turned = []
        loop.call_soon(turned.append, True)
        task = loop.create_task(handle_request(handler))
        assert seen["task"] is task and not turned  # ran at once, before the loop's next turn, as its task
        assert asyncio.current_task() is me and VAR.get() == "connection's"  # back as it was
        assert seen["var"] == "connection's"  # the handler started from a copy of this context
        seen["gate"].set_result(None)
        assert await task == ("answer", False)
        assert seen["after"] is task

    loop.run_until_complete(connection())


def test_a_cancellation_before_the_tasks_own_first_step_reaches_the_handler_where_it_waits(
    loop: asyncio.AbstractEventLoop,
) -> None:
    steps: list[str] = []

    async def handler(request: object) -> str:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            steps.append("cancelled at its wait")
            await asyncio.sleep(0)  # a clean-up that waits still runs
            steps.append("cleaned up")
            raise
        return "never"

    async def connection() -> None:
        task = loop.create_task(handle_request(handler))
        task.cancel()  # before the loop ran the task at all
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    loop.run_until_complete(connection())
    assert steps == ["cancelled at its wait", "cleaned up"]


def test_a_first_step_that_finishes_or_raises_ends_the_task_so(loop: asyncio.AbstractEventLoop) -> None:
    async def answers(request: object) -> str:
        return "at once"

    async def fails(request: object) -> str:
        raise ValueError("boom")

    async def cancels(request: object) -> str:
        raise asyncio.CancelledError

    async def connection() -> None:
        assert await loop.create_task(handle_request(answers)) == ("at once", False)
        failing = handle_request(fails)
        assert await loop.create_task(failing) == ("error 500", False)  # aiohttp's own answer to an error
        with pytest.raises(asyncio.CancelledError):
            await loop.create_task(handle_request(cancels))

    loop.run_until_complete(connection())


def test_other_coroutines_get_ordinary_tasks(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []

    async def background() -> None:
        ran.append("background")

    async def connection() -> None:
        task = loop.create_task(background(), name="named")
        assert ran == [] and task.get_name() == "named"  # not started yet: the loop's next turn
        await task
        assert ran == ["background"]

    loop.run_until_complete(connection())


def test_a_handler_started_eagerly_leaves_no_reference_cycle(loop: asyncio.AbstractEventLoop) -> None:
    async def ends_later(request: object) -> str:
        await asyncio.sleep(0)
        raise asyncio.CancelledError  # an ending with an error and a traceback

    async def ends_at_once(request: object) -> str:
        raise asyncio.CancelledError  # in the first step: the task raises it on its own first

    async def answers(request: object) -> str:
        await asyncio.sleep(0)
        return "ok"

    async def connection() -> None:
        for handler in (ends_later, ends_at_once):
            with pytest.raises(asyncio.CancelledError):
                await loop.create_task(handle_request(handler))
        assert await loop.create_task(handle_request(answers)) == ("ok", False)

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        loop.run_until_complete(connection())
        gc.collect()
        left = [obj for obj in gc.garbage if isinstance(obj, eager_start._StartedHandler)
                or getattr(getattr(obj, "f_code", None), "co_name", None) in ("send", "run_first_step")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_a_loop_with_a_task_factory_of_its_own_keeps_it() -> None:
    loop = asyncio.new_event_loop()
    try:
        def own(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(own)
        assert not start_handlers_eagerly(loop)
        stop_starting_handlers_eagerly(loop)
        assert loop.get_task_factory() is own
    finally:
        loop.close()


async def test_the_gateway_runner_starts_handlers_eagerly_and_puts_the_loop_back() -> None:
    """Through a real socket: the handler runs as its own task, not the connection's, and the
    same keep-alive connection serves the next request after a handler was cancelled by a
    deadline it set on itself (what the engine's first-byte deadline does)."""
    loop = asyncio.get_running_loop()

    async def answer(request: web.Request) -> web.Response:
        assert asyncio.current_task() is not request.task  # request.task: the connection's task
        if request.query.get("deadline"):
            me = asyncio.current_task()
            assert me is not None
            loop.call_later(0.01, me.cancel)
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                me.uncancel()
                return web.Response(status=504, text="deadline")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", answer)
    runner = GatewayRunner(app, ServerSettings(), access_log=None, handle_signals=False)
    await runner.setup()
    assert loop.get_task_factory() is eager_start._eager_factory
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            for query, expected in (("", (200, "ok")), ("?deadline=1", (504, "deadline")), ("", (200, "ok"))):
                async with session.get(f"http://127.0.0.1:{port}/{query}") as response:
                    assert (response.status, await response.text()) == expected
    finally:
        await runner.cleanup()
    assert loop.get_task_factory() is None
