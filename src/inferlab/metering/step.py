"""The metering step: one usage event for every call that reaches the chain, whatever its ending.

It is the chain's first step, so a refusal by any step after it (404, 403, 429, 503), an engine
error, a stream cut short and a cancellation all end in its clean-up, which it deferred first and
which therefore runs last, after every other step settled. Requests refused before the chain
exists (401, 400 validation, 413) leave no event (``docs/architecture.md``).

When does the event leave? For a successful answer whose usage is known (the engine's, or none
at all: a cache hit), just before its last bytes (``Call.finish``), and with
``metering.acknowledge`` the answer's end follows the event's arrival in the outbox's journal (one
append, no wait; a wait, bounded, for the outbox's commit only when the journal refuses writes): a
client never sees the end of an answer whose ledger line could still die with the process.
Otherwise (errors, disconnects, cancellations, an engine that gave no usage) at the end of the
call, through the buffer, without waiting.

Usage: when the engine gave none but did work (a stream cut short, an engine that does not
report usage), the call's ``usage_resolver`` counts the prompt and the generated text (the
``Transcript`` tap) with the engine's tokenizer, before the limiter settles and the event is made
(``Call.end`` runs it first), bounded by ``tokenize_timeout_s``; past it, the body-size estimate,
marked ``token_source=estimate``. A call no replica was dispatched to, or whose engine failed
before any output, used nothing (it is not charged).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from inferlab.backends.tokenize import TokenizerUnavailable
from inferlab.errors import InferLabError
from inferlab.metering.event import EventStatus, TokenSource, UsageEvent
from inferlab.metering.protocol import Pricing, Tokenizers, UsageObserver, UsageRecorder
from inferlab.metering.transcript import Transcript
from inferlab.pipeline import Call, Ending, EndKind, Next, Reply
from inferlab.types import RequestKind

log = logging.getLogger("inferlab.metering")

HardwareOf = Callable[[str, str], str | None]  # (replica, model) → the replica's hardware name
STATUSES = {EndKind.SUCCESS: EventStatus.SUCCESS, EndKind.ERROR: EventStatus.ERROR,
            EndKind.DISCONNECT: EventStatus.DISCONNECT, EndKind.CANCELLED: EventStatus.CANCELLED}
SOURCES = {"engine": TokenSource.ENGINE, "tokenizer": TokenSource.TOKENIZER, "estimate": TokenSource.ESTIMATE,
           "none": TokenSource.NONE}
CLIENT_CLOSED = 499  # nginx's "client closed request": a disconnect has no HTTP status of its own


def http_status(ending: Ending) -> int:
    if ending.kind is EndKind.SUCCESS:
        return 200
    if isinstance(ending.error, InferLabError):
        return ending.error.status
    if ending.kind is EndKind.DISCONNECT:
        return CLIENT_CLOSED
    return 503 if ending.kind is EndKind.CANCELLED else 500


class EventIds:
    """Unique event ids without a uuid4 per call: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):010x}"


def _no_hardware(replica: str, model: str) -> str | None:
    return None


class MeterUsage:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, recorder: UsageRecorder, tokenizers: Tokenizers, *, tokenize_timeout_s: float = 1.0,
                 acknowledge: bool = True, ack_timeout_s: float = 1.0, hardware: HardwareOf = _no_hardware,
                 pricing: Pricing | None = None, observer: UsageObserver | None = None) -> None:
        self.recorder = recorder
        self.tokenizers = tokenizers
        self.tokenize_timeout_s = tokenize_timeout_s
        self.acknowledge = acknowledge
        self.ack_timeout_s = ack_timeout_s
        self.hardware = hardware
        self.pricing = pricing
        self.observer = observer
        self._ids = EventIds()

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        meter = _Meter(self, call, self._ids.next())
        call.defer(meter.ended)
        call.finishers.append(meter.finish)
        call.usage_resolver = meter.resolve
        if call.stream:  # tapped from the first event on (a tap added after call_next could miss it)
            meter.transcript = Transcript()
            call.taps.append(meter.transcript)
        reply = await call_next(call)
        if reply.response is not None and call.usage.known is None:  # an engine that reports no usage
            meter.transcript = Transcript()
            meter.transcript.add_choices(reply.response.body)
        return reply

    def event(self, call: Call, event_id: str, ending: Ending) -> UsageEvent:
        usage = call.usage
        prompt, completion = usage.settled()
        replica = call.replicas[-1] if call.replicas else None
        event = UsageEvent(
            id=event_id, time=datetime.now(UTC), tenant=call.caller.tenant_id, user=call.caller.user_id,
            key=call.caller.key_id, tier=call.tier.name if call.tier is not None else "", route=call.route,
            model=call.model, model_version=call.model_version, replica=replica,
            hardware=self.hardware(replica, call.model) if replica is not None else None,
            prompt_tokens=prompt, completion_tokens=completion, cached_tokens=usage.cached,
            token_source=SOURCES[usage.settled_source()],
            queue_ms=None if call.queue_s is None else call.queue_s * 1000.0,
            ttft_ms=None if call.first_byte_s is None else call.first_byte_s * 1000.0,
            duration_ms=(time.perf_counter() - call.started) * 1000.0,
            status=STATUSES[ending.kind], http_status=http_status(ending), request_id=call.request_id,
        )
        if self.pricing is not None:
            event = self.pricing.priced(event)
        if self.observer is not None:  # the event is recorded next, exactly once per call
            self.observer.usage_recorded(event)
        return event


class _Meter:
    """One call's metering: its event id, its transcript, and whether its event left."""

    __slots__ = ("_call", "_id", "_recorded", "_step", "transcript")

    def __init__(self, step: MeterUsage, call: Call, event_id: str) -> None:
        self._step = step
        self._call = call
        self._id = event_id
        self._recorded = False
        self.transcript: Transcript | None = None  # what the answer said (a stream, or usage missing)

    async def finish(self) -> None:
        """The answer is complete: record its event now if its usage is known (waiting, bounded,
        until it is in the outbox); else at the end, once counted."""
        if self._recorded or self._call.usage.known is None:
            return
        self._recorded = True
        step = self._step
        event = step.event(self._call, self._id, Ending(EndKind.SUCCESS))
        if step.acknowledge:
            await step.recorder.append_durably(event, step.ack_timeout_s)
        else:
            step.recorder.append(event)

    def ended(self, ending: Ending) -> None:
        """The call's last clean-up: record its event unless ``finish`` did."""
        if not self._recorded:
            self._recorded = True
            self._step.recorder.append(self._step.event(self._call, self._id, ending))

    async def resolve(self, call: Call, ending: Ending) -> None:
        """Fill the call's usage when the engine gave none (``Call.end`` runs this first)."""
        if not call.replicas or (ending.kind is EndKind.ERROR and not call.usage.chunks):
            call.usage.nothing()  # never dispatched, or the engine failed before any output: not charged
            return
        tokenizer = self._step.tokenizers.get(call.replicas[-1])
        if tokenizer is None:
            return
        try:
            async with asyncio.timeout(self._step.tokenize_timeout_s):
                prompt = await tokenizer.prompt_tokens(call.kind, call.body)
                completion = 0
                if call.kind is not RequestKind.EMBEDDING and self.transcript is not None:
                    for text in self.transcript.texts():
                        completion += await tokenizer.text_tokens(text)
        except (TokenizerUnavailable, TimeoutError) as exc:
            log.warning("tokens not counted: the estimate is used", extra={
                "request_id": call.request_id, "replica": call.replicas[-1], "error": str(exc) or "timeout"})
            return
        call.usage.counted(prompt, completion)
