"""Build and run the chain of request steps (the shape of starlette's middleware stack).

A step is ``async (call, call_next) -> Reply``: it may refuse (raise), answer itself (a cache
hit), or pass the call on and look at the reply. What a step acquires it releases in a clean-up
it ``defer``s on the call; the chain runs the clean-ups once, newest first, when the call fails
inside it, and the API runs them when the reply has been rendered (or the client went away).

A step only some routes need (``only_for``) is left out of the other routes' chains: each route
gets its own chain of links, made on its first call, so a chat request does not pass through the
steps of code review or the Responses API.

A step that leaves a stream as the router opened it says so: ``passes_streams_through = True``.
It refuses, or registers its headers, taps and clean-ups, before ``call_next``, and then returns
the reply unchanged (a tap added later would miss the first event). When every step of a route
does (``Chain.relays_first``), a stream's first event may go to the client the moment the engine
sends it (``Call.first_sink``), before the steps' ``call_next`` have returned: nothing any of them
does afterwards could change what the client got.
A step that rewrites replies (legacy completions, CodeLab, the Responses API), or that does not
say, keeps its route's first event until the whole chain has returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
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


@dataclass(frozen=True, slots=True)
class RouteScoped:
    """A step that only calls of ``routes`` need: the chain of any other route leaves it out."""

    step: Step
    routes: frozenset[str]

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        if call.route in self.routes:
            return await self.step(call, call_next)
        return await call_next(call)


def only_for(routes: Iterable[str], step: Step) -> RouteScoped:
    return RouteScoped(step, frozenset(routes))


def passes_streams_through(step: Step) -> bool:
    """Whether ``step`` leaves streams as they come (see the module's docstring); a step says so."""
    return getattr(step, "passes_streams_through", False) is True


class Chain:
    """The configured steps, outermost first; the last one answers (the router)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)
        self._heads: dict[str, Next] = {}
        self._relays: dict[str, bool] = {}

    def _route_steps(self, route: str) -> list[Step]:
        """The steps ``route``'s calls pass through, outermost first."""
        chosen: list[Step] = []
        for configured in self.steps:
            if isinstance(configured, RouteScoped):
                if route in configured.routes:
                    chosen.append(configured.step)
            else:
                chosen.append(configured)
        return chosen

    def relays_first(self, route: str) -> bool:
        """Whether every step of ``route`` passes streams through: its first event may then go to
        the client as the engine sends it."""
        found = self._relays.get(route)
        if found is None:
            found = self._relays[route] = all(passes_streams_through(step) for step in self._route_steps(route))
        return found

    def head(self, route: str) -> Next:
        """The first link of ``route``'s chain: the steps it needs, each calling the next directly."""
        found = self._heads.get(route)
        if found is None:
            found = _nobody_answered
            for step in reversed(self._route_steps(route)):
                found = partial(step, call_next=found)
            self._heads[route] = found  # routes are the code's own constants: a handful of entries
        return found

    async def __call__(self, call: Call) -> Reply:
        """The reply; on an error the call's clean-ups have run before it propagates."""
        try:
            return await self.head(call.route)(call)
        except BaseException as exc:
            await call.end(ending_of(exc))
            raise
