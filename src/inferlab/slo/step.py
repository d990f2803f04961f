"""The SLO step: after the tier is known, every call's measures go to the tracker when it ends —
time to first token and per output token of a stream, and whether the gateway failed it (5xx).
Placed right after the tier step, it sees every refusal and failure of the steps after it."""

from __future__ import annotations

import time

from inferlab.errors import InferLabError
from inferlab.pipeline import Call, Ending, EndKind, Next, Reply
from inferlab.slo.tracker import Measure, SloTracker


def measure_of(call: Call, ending: Ending, ended_s: float) -> Measure:
    """``ended_s``: seconds from the call's start to its end."""
    if ending.kind in (EndKind.DISCONNECT, EndKind.CANCELLED):
        return Measure()  # the client left, or the gateway stopped: not the service's doing
    if ending.ok:
        available: bool | None = True
    else:
        error = ending.error
        status = error.status if isinstance(error, InferLabError) else 500
        available = False if status >= 500 else None  # the client's own error (4xx) counts for nothing
    ttft = call.first_byte_s if call.stream else None
    tpot = None
    if ending.ok and ttft is not None and call.usage.known is not None:
        completion = call.usage.known[1]
        if completion >= 2:
            tpot = max(0.0, ended_s - ttft) / (completion - 1)
    return Measure(ttft_s=ttft, tpot_s=tpot, available=available)


class TrackSlo:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, tracker: SloTracker) -> None:
        self._tracker = tracker

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        call.defer(_Record(self._tracker, call))
        return await call_next(call)


class _Record:
    __slots__ = ("_call", "_tracker")

    def __init__(self, tracker: SloTracker, call: Call) -> None:
        self._tracker = tracker
        self._call = call

    def __call__(self, ending: Ending) -> None:
        call = self._call
        if call.tier is None:
            return
        measure = measure_of(call, ending, time.perf_counter() - call.started)
        self._tracker.record(call.tier.name, call.model, call.tier.spec.slo, measure)
