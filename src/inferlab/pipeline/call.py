"""The HTTP-free call object every request step reads and writes, and what a chain gives back.

``Call`` holds everything a step may need about one request: what was asked (kind, model, the
validated body), who asked (``Caller``), and how (streaming, cache mode, session). Steps add
response headers, per-chunk taps and clean-ups (``defer``) to it; they never see aiohttp.

``Reply`` is what the innermost step produced: a whole response, an opened stream (its first
chunk and the rest), or stored bytes to replay. The API renders it as JSON or SSE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from inferlab.pipeline.usage import UsageMeter
from inferlab.types import Caller, FirstSink, InferenceRequest, InferenceResponse, RequestKind, StreamChunk

if TYPE_CHECKING:
    from inferlab.errors import InferLabError
    from inferlab.tenants.tier import Tier

CacheMode = Literal["auto", "use", "bypass"]

log = logging.getLogger("inferlab.pipeline")


class EndKind(str, Enum):
    SUCCESS = "success"  # the whole answer reached the client
    ERROR = "error"  # an InferLab error ended it (before or after the first byte)
    DISCONNECT = "disconnect"  # the client went away
    CANCELLED = "cancelled"  # the task was cancelled (shutdown, drain deadline)


@dataclass(frozen=True, slots=True)
class Ending:
    """How a call ended, handed to every clean-up."""

    kind: EndKind
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.kind is EndKind.SUCCESS


SUCCESS = Ending(EndKind.SUCCESS)
DISCONNECT = Ending(EndKind.DISCONNECT)

Cleanup = Callable[[Ending], Awaitable[None] | None]
Tap = Callable[[bytes], None]
Finisher = Callable[[], Awaitable[None]]
UsageResolver = Callable[["Call", Ending], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class Call:
    """One inference request on its way through the steps."""

    request_id: str
    kind: RequestKind
    route: str  # the OpenAI route, e.g. "/v1/chat/completions"
    model: str  # the public model name the client asked for (the registry's step strips its @version)
    body: dict[str, Any]
    caller: Caller
    stream: bool = False
    include_usage: bool = False
    cache_mode: CacheMode = "auto"
    priority: int = 0  # the priority class (0 low … 3 critical), from the tier
    batch: bool = False  # a Batch API line: the lowest (sheddable) class, whatever the tier
    deadline: float | None = None  # time.monotonic() by which it must start (x-inferlab-deadline-ms or the tier's)
    session_key: str | None = None
    fallback: str | None = None  # x-inferlab-fallback: why a browser hybrid client sent this to the server
    headers: dict[str, str] = field(default_factory=dict)  # added to the response
    usage: UsageMeter = field(default_factory=UsageMeter)
    taps: list[Tap] = field(default_factory=list)  # each SSE event's bytes, as sent
    replicas: list[str] = field(default_factory=list)  # the replicas it was dispatched to, in order
    started: float = field(default_factory=time.perf_counter)
    first_byte_s: float | None = None  # seconds from ``started`` to the first streamed chunk
    tier: Tier | None = None  # the caller's tier, once the tier step resolved it
    interrupted: InferLabError | None = None  # set from outside: the API ends the call with it
    queue_s: float | None = None  # the wait for a replica slot in the scheduler's queue, once routed
    client_gone: Callable[[], bool] | None = None  # set by the front end: has the client disconnected?
    usage_resolver: UsageResolver | None = None  # fills ``usage`` when the engine gave none (see ``end``)
    finishers: list[Finisher] = field(default_factory=list)  # run by ``finish``, before the last bytes
    notes: dict[str, Any] = field(default_factory=dict)  # what one step leaves for a later one, by name
    pool: str | None = None  # the pool that serves it, when the model registry chose one (else ``model``'s)
    model_version: str | None = None  # the registry's version that serves it (its usage event records it)
    first_sink: FirstSink | None = None  # set by the front end when every step of the route passes streams through
    _cleanups: list[Cleanup] = field(default_factory=list)
    _ended: Ending | None = None
    _finished: bool = False

    def inference(self) -> InferenceRequest:
        return InferenceRequest(self.kind, self.model, self.body, self.request_id, self.stream, self.include_usage,
                                self.priority)

    def interrupt(self, error: InferLabError) -> None:
        """End the call with ``error`` as soon as the API can: before its next chunk, or instead
        of its answer (a suspended tenant's requests in flight)."""
        if self.interrupted is None:
            self.interrupted = error

    def defer(self, cleanup: Cleanup) -> None:
        """Run ``cleanup(ending)`` once when the call ends, after those deferred later (LIFO)."""
        self._cleanups.append(cleanup)

    @property
    def ended(self) -> Ending | None:
        return self._ended

    async def finish(self) -> None:
        """The answer is complete and about to be sent (its last bytes, or the whole body): run the
        finishers once (the metering step makes the usage event durable here, so a client never
        sees an answer end whose ledger line could still be lost with the process)."""
        if self._finished:
            return
        self._finished = True
        for finisher in self.finishers:
            try:
                await finisher()
            except Exception:
                log.exception("a finisher failed", extra={"request_id": self.request_id})

    async def end(self, ending: Ending) -> None:
        """Run the clean-ups once, newest first. Later calls do nothing. A failing clean-up is
        logged and does not stop the others: each owns a different resource.

        Before them, when the engine gave no usage, ``usage_resolver`` fills it (the metering step
        counts the tokens with the model's tokenizer, bounded), so the limiter, the metrics and the
        usage event settle from the same numbers. A cancellation arriving meanwhile (a client that
        closes the connection right after the answer) does not skip the clean-ups: it is raised
        once they have run."""
        if self._ended is not None:
            return
        if ending.kind is EndKind.CANCELLED and self.client_gone is not None and self.client_gone():
            ending = Ending(EndKind.DISCONNECT, ending.error)  # the client went away: a disconnect
        self._ended = ending
        cancelled: BaseException | None = None
        if self.usage_resolver is not None and self.usage.known is None:
            cancelled = await self._resolve_usage(self.usage_resolver, ending)
        if ending.kind in (EndKind.DISCONNECT, EndKind.CANCELLED):
            self.usage.cut_short()
        cleanups, self._cleanups = self._cleanups, []
        for cleanup in reversed(cleanups):
            try:
                result = cleanup(ending)
                if result is not None:
                    await result
            except asyncio.CancelledError as exc:
                cancelled = exc
            except Exception:
                log.exception("a clean-up failed", extra={"request_id": self.request_id})
        self._let_go(ending)
        if cancelled is not None:
            raise cancelled

    def _let_go(self, ending: Ending) -> None:
        """Drop what the steps and the front end registered, all done with now, and the error that
        ended the call (the clean-ups had it). Each holds the call — a step's bound method, the
        first sink and its request, the error's traceback and its frames — so kept they would leave
        the call and everything it reaches in reference cycles: garbage for the collector instead
        of freed as the request ends, about 40 objects a request, and the collector's pauses."""
        if ending.error is not None:
            self._ended = Ending(ending.kind)
        self.taps.clear()
        self.finishers.clear()
        self.usage_resolver = None
        self.first_sink = None

    async def _resolve_usage(self, resolver: UsageResolver, ending: Ending) -> BaseException | None:
        """Run the resolver to its end (it bounds itself) even when this task is cancelled meanwhile
        — the client closing its connection right after the answer must not make the count an
        estimate; the cancellation is returned, to be raised after the clean-ups."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(resolver(self, ending))
        cancelled: BaseException | None = None
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as exc:
                if task.cancelled():
                    break
                cancelled = exc
            except Exception:
                log.exception("usage resolution failed", extra={"request_id": self.request_id})
        return cancelled


@dataclass(slots=True)
class Reply:
    """What the chain produced: exactly one of ``response``, ``chunks`` or ``replay``."""

    response: InferenceResponse | None = None
    first: StreamChunk | None = None
    chunks: AsyncIterator[StreamChunk] | None = None
    replay: bytes | None = None  # stored bytes: a JSON body, or a whole SSE stream when ``call.stream``

    @property
    def streamed(self) -> bool:
        return self.chunks is not None
