"""Build and run the chain of request steps (the shape of starlette's middleware stack).

A step is ``async (call, call_next) -> Reply``: it may refuse (raise), answer itself (a cache
hit), or pass the call on and look at the reply. What a step acquires it releases in a clean-up
it ``defer``s on the call; the chain runs the clean-ups once, newest first, when the call fails
inside it, and the API runs them when the reply has been rendered (or the client went away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from inferlab.errors import InferLabError
from inferlab.pipeline.call import Call, Ending, EndKind, Reply

Next = Callable[[Call], Awaitable[Reply]]


class Step(Protocol):
    async def __call__(self, call: Call, call_next: Next) -> Reply: ...


def ending_of(exc: BaseException) -> Ending:
    if isinstance(exc, asyncio.CancelledError):
        return Ending(EndKind.CANCELLED, exc)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return Ending(EndKind.DISCONNECT, exc)
    return Ending(EndKind.ERROR, exc)


async def _nobody_answered(call: Call) -> Reply:
    raise InferLabError(f"no step answered the request for model {call.model!r}")


def _link(step: Step, call_next: Next) -> Next:
    async def run(call: Call) -> Reply:
        return await step(call, call_next)

    return run


class Chain:
    """The configured steps, outermost first; the last one answers (the router)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        head: Next = _nobody_answered
        for step in reversed(self.steps):
            head = _link(step, head)
        self._head = head

    async def __call__(self, call: Call) -> Reply:
        """The reply; on an error the call's clean-ups have run before it propagates."""
        try:
            return await self._head(call)
        except BaseException as exc:
            await call.end(ending_of(exc))
            raise
