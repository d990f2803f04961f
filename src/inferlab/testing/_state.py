"""The simulator's script and run-time state, shared by its OpenAI and Ollama front ends.

A request goes through ``SimulatorState.admit()``: it is counted, waits for a running slot when
``max_concurrency`` is scripted, and receives a ``RequestPlan`` — a snapshot of the script taken
at admission, so that re-scripting mid-request never changes a request already running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from inferlab.testing._faults import STREAM_FAULTS

_SCRIPT_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "completion_tokens": (int,),
    "token_delay_s": (int, float),
    "prefill_delay_s": (int, float),
    "prefill_token_delay_s": (int, float),
    "fail_status": (int, type(None)),
    "fail_next": (int,),
    "fail_rate": (int, float),
    "fail_message": (str, type(None)),
    "fail_retry_after_s": (int, type(None)),
    "hang": (bool,),
    "cut_after_tokens": (int, type(None)),
    "max_concurrency": (int, type(None)),
    "saturation_concurrency": (int, type(None)),
    "stream_fault": (str, type(None)),
    "stream_fault_after": (int,),
    "fault_line_bytes": (int,),
    "report_usage": (bool,),
}


class ScriptError(ValueError):
    """A script update named an unknown field or gave a value of the wrong type."""


@dataclass
class SimulatorScript:
    """How the simulated engine behaves; mutable while the simulator runs.

    ``fail_status`` with ``fail_next`` = N makes the next N requests answer that status with an
    error body (``fail_next=-1``: every request), whose message is ``fail_message`` (an engine that
    echoes secrets or internals) and whose ``Retry-After`` is ``fail_retry_after_s`` when set (else
    1 on 429 and 503). ``hang`` accepts requests and never answers.
    ``cut_after_tokens`` drops the connection after N streamed chunks (a non-streamed request is
    dropped before any response). ``max_concurrency`` queues requests beyond N running ones.
    ``stream_fault`` makes streams malformed after ``stream_fault_after`` token chunks (see
    ``inferlab.testing._faults`` for the faults; ``long_line`` writes ``fault_line_bytes``).
    ``report_usage`` off: an engine that reports no usage (none in answers, no usage chunk even
    when asked), whose tokens the gateway must count itself (``POST /tokenize``).
    """

    completion_tokens: int = 16
    token_delay_s: float = 0.0
    prefill_delay_s: float = 0.0
    prefill_token_delay_s: float = 0.0  # more prefill per prompt token (a prompt's words)
    fail_status: int | None = None
    fail_next: int = 0
    fail_rate: float = 0.0  # besides fail_next: each request fails (fail_status, else 500) with this probability
    fail_message: str | None = None
    fail_retry_after_s: int | None = None
    hang: bool = False
    cut_after_tokens: int | None = None
    max_concurrency: int | None = None
    saturation_concurrency: int | None = None  # beyond this many running, every token slows in proportion
    stream_fault: str | None = None
    stream_fault_after: int = 2
    fault_line_bytes: int = 1024 * 1024 + 1024
    report_usage: bool = True

    def update(self, fields: dict[str, Any]) -> None:
        """Apply a partial update, validating every field before changing any."""
        for name, value in fields.items():
            allowed = _SCRIPT_FIELD_TYPES.get(name)
            if allowed is None:
                raise ScriptError(f"unknown script field {name!r}")
            is_bool = isinstance(value, bool)
            if not isinstance(value, allowed) or (is_bool and bool not in allowed):
                raise ScriptError(f"script field {name!r} has the wrong type: {value!r}")
            if name == "stream_fault" and value is not None and value not in STREAM_FAULTS:
                known = ", ".join(sorted(STREAM_FAULTS))
                raise ScriptError(f"unknown stream fault {value!r}; one of {known}")
        for name, value in fields.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What one admitted request will do, fixed at admission."""

    fail_status: int | None
    hang: bool
    fail_message: str
    fail_retry_after_s: int | None
    cut_after_tokens: int | None
    completion_tokens: int
    token_delay_s: float
    prefill_delay_s: float
    prefill_token_delay_s: float = 0.0
    stream_fault: str | None = None
    stream_fault_after: int = 0
    fault_line_bytes: int = 0
    report_usage: bool = True


@dataclass(slots=True)
class SimulatorStats:
    requests_total: int = 0
    in_flight: int = 0
    max_in_flight_seen: int = 0
    running: int = 0
    waiting: int = 0
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    cancelled_total: int = 0  # requests whose client (the gateway) went away before the answer ended
    streamed_tokens_total: int = 0  # token chunks actually written to streams (a stream cut short: fewer)
    tokenize_total: int = 0  # POST /tokenize and /apply-template requests

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class SimulatorState:
    """Script, counters and admission control of one simulator instance."""

    def __init__(self, script: SimulatorScript) -> None:
        self.script = script
        self.stats = SimulatorStats()
        self._random = random.Random(0)  # fail_rate: the same failures run after run
        self._slot_freed = asyncio.Condition()
        self._closing = asyncio.Event()
        self.last_request: dict[str, Any] | None = None  # the last body a front end received
        self.last_cancelled_at: float | None = None  # time.monotonic() of the last cancelled request
        self._dropping: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()  # handlers dropping theirs

    def _take_plan(self) -> RequestPlan:
        script = self.script
        fail_status = None
        if script.fail_status is not None and script.fail_next != 0:
            fail_status = script.fail_status
            if script.fail_next > 0:
                script.fail_next -= 1
        elif script.fail_rate > 0 and self._random.random() < script.fail_rate:
            fail_status = script.fail_status or 500
        return RequestPlan(
            fail_status=fail_status,
            hang=script.hang,
            fail_message=script.fail_message or "simulated engine failure",
            fail_retry_after_s=script.fail_retry_after_s,
            cut_after_tokens=script.cut_after_tokens,
            completion_tokens=max(0, script.completion_tokens),
            token_delay_s=max(0.0, float(script.token_delay_s)),
            prefill_delay_s=max(0.0, float(script.prefill_delay_s)),
            prefill_token_delay_s=max(0.0, float(script.prefill_token_delay_s)),
            stream_fault=script.stream_fault,
            stream_fault_after=max(0, script.stream_fault_after),
            fault_line_bytes=max(0, script.fault_line_bytes),
            report_usage=script.report_usage,
        )

    def _has_free_slot(self) -> bool:
        limit = self.script.max_concurrency
        return limit is None or self.stats.running < limit

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[RequestPlan]:
        """Count a request in, wait for a running slot if needed, and count it out at the end."""
        stats = self.stats
        stats.requests_total += 1
        stats.in_flight += 1
        stats.max_in_flight_seen = max(stats.max_in_flight_seen, stats.in_flight)
        running = False
        try:
            if not self._has_free_slot():
                stats.waiting += 1
                try:
                    async with self._slot_freed:
                        await self._slot_freed.wait_for(self._has_free_slot)
                finally:
                    stats.waiting -= 1
            stats.running += 1
            running = True
            yield self._take_plan()
        except asyncio.CancelledError:
            if asyncio.current_task() not in self._dropping:  # the client left, the simulator did not drop it
                stats.cancelled_total += 1
                self.last_cancelled_at = time.monotonic()
            raise
        finally:
            stats.in_flight -= 1
            if running:
                stats.running -= 1
                if self.script.max_concurrency is not None or stats.waiting:
                    await self._notify_slot_freed()

    async def _notify_slot_freed(self) -> None:
        async with self._slot_freed:
            self._slot_freed.notify_all()

    async def script_changed(self) -> None:
        """Wake queued requests: a new ``max_concurrency`` may let them run."""
        await self._notify_slot_freed()

    def slowdown(self) -> float:
        """How much slower a token is now than ``token_delay_s`` (``saturation_concurrency``)."""
        knee = self.script.saturation_concurrency
        return max(1.0, self.stats.running / knee) if knee else 1.0

    def count_tokens(self, prompt_tokens: int, generated_tokens: int) -> None:
        self.stats.prompt_tokens_total += prompt_tokens
        self.stats.generation_tokens_total += generated_tokens

    def begin_closing(self) -> None:
        self._closing.set()

    def reopen(self) -> None:
        self._closing.clear()

    async def hang(self, request: web.Request) -> None:
        """Never answer: wait until the client disconnects (the handler is then cancelled) or the
        simulator stops (then the connection is dropped)."""
        await self._closing.wait()
        await self.drop_connection(request)

    async def drop_connection(self, request: web.Request) -> None:
        """Close the connection abruptly, without (the rest of) a response, like a crashed engine.

        The simulator's server runs with handler cancellation on, so aborting the transport cancels
        the handler (not counted in ``cancelled_total``: the client did not leave); the exception
        below only guards against that not happening.
        """
        task = asyncio.current_task()
        if task is not None:
            self._dropping.add(task)
        await _abort(request)


async def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
    await asyncio.sleep(1.0)
    raise ConnectionResetError("simulator dropped the connection")
