"""Each request's handler started at once, as aiohttp does on Python 3.12 and later.

aiohttp runs every request's handler in a task of its own (each request gets its own copy of the
context variables). On Python 3.12 and later it starts that task eagerly (``eager_start``): the
handler runs at once, up to its first wait. Python 3.11 has no eager tasks, so there the task's
first step waits for the event loop's next turn — behind everything the loop does in that turn,
which in a gateway busy with streams is every engine chunk that arrived meanwhile, each forwarded
to its client from the engine connection's callback. With 16 streams in flight that wait was
about 120 µs (median) of every request's time to first token, against about 50 µs in front of
the bare pass-through proxy, whose chunks go through tasks queued behind the new request.

``start_handlers_eagerly`` gives Python 3.11 the later versions' behaviour with the event loop's
task factory: a coroutine of aiohttp's ``RequestHandler._handle_request`` gets its task as usual,
then runs its first step before the factory returns, in that task's context and as that task
(``asyncio.current_task()`` is it, as a deadline that cancels it expects). When the loop gets to
the task, it carries the handler on from the wait its first step ended on: a cancellation that
came meanwhile is thrown in there, as into any task that had started. Every other coroutine gets
the task it would have had. On Python 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from asyncio import tasks as asyncio_tasks
from collections.abc import Coroutine, Generator
from typing import Any

from aiohttp.web_protocol import RequestHandler

_HANDLER_CODE = RequestHandler._handle_request.__code__
_NOTHING: Any = object()


class _StartedHandler(Coroutine[Any, Any, Any]):
    """A handler's coroutine whose first step ran before its task's did. The task's first ``send``
    gets what that step waits for (as if the step were the task's own); everything after goes to
    the coroutine, cancellations included. A first step that finished, or raised, ends the task
    the same way on its first step."""

    __slots__ = ("_coro", "_raised", "_returned", "_waits_for")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._waits_for: Any = _NOTHING
        self._returned: Any = _NOTHING
        self._raised: BaseException | None = None

    def run_first_step(self) -> None:
        try:
            self._waits_for = self._coro.send(None)
        except StopIteration as done:
            self._returned = done.value
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the task raises it, as it would have
            self._raised = exc

    def send(self, value: Any) -> Any:
        waits_for = self._waits_for
        if waits_for is not _NOTHING:
            self._waits_for = _NOTHING
            return waits_for
        if self._returned is not _NOTHING:
            returned, self._returned = self._returned, _NOTHING
            raise StopIteration(returned)
        raised = self._raised
        if raised is not None:
            self._raised = None
            try:
                raise raised
            finally:
                raised = None  # the traceback holds this frame: no reference cycle through it
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._waits_for = _NOTHING
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # the older form: asyncio itself passes the instance alone

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self  # an iterator over its own steps

    def __iter__(self) -> _StartedHandler:
        return self

    def __next__(self) -> Any:
        return self.send(None)


def _eager_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], *,
                   context: contextvars.Context | None = None) -> asyncio.Task[Any]:
    if getattr(coro, "cr_code", None) is not _HANDLER_CODE:
        return asyncio.Task(coro, loop=loop, context=context)
    context = context or contextvars.copy_context()
    started = _StartedHandler(coro)
    task: asyncio.Task[Any] = asyncio.Task(started, loop=loop, context=context)
    caller = asyncio.current_task(loop)  # the connection's task, which made this one and will await it
    if caller is not None:
        asyncio_tasks._leave_task(loop, caller)
    asyncio_tasks._enter_task(loop, task)
    try:
        context.run(started.run_first_step)
    finally:
        asyncio_tasks._leave_task(loop, task)
        if caller is not None:
            asyncio_tasks._enter_task(loop, caller)
    return task


def start_handlers_eagerly(loop: asyncio.AbstractEventLoop) -> bool:
    """Install the task factory on ``loop`` (Python 3.11 only): whether it did. A loop that already
    has a factory keeps it (its tasks are its owner's business); so does a later Python."""
    if sys.version_info >= (3, 12) or loop.get_task_factory() is not None:
        return False
    loop.set_task_factory(_eager_factory)  # type: ignore[arg-type]  # typeshed's protocol names its own keywords
    return True


def stop_starting_handlers_eagerly(loop: asyncio.AbstractEventLoop) -> None:
    """Take the factory off ``loop`` again, if it is still the one installed."""
    if loop.get_task_factory() is _eager_factory:
        loop.set_task_factory(None)
