"""The registry's pipeline step: resolve the model to a version's pool (``resolve``), say which in
the response headers, hold the pool until the call ends (the drain waits for it), and record the
outcome of an experiment's variant (errors, TTFT, inter-token latency, output tokens, cost)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from inferlab.errors import InferLabError
from inferlab.pipeline import Call, Ending, EndKind, Next, Reply
from inferlab.registry.resolve import Resolution, Resolver
from inferlab.registry.stats import Outcome, VariantStats

Price = Callable[[str, int, int], float]  # (model, prompt tokens, completion tokens) → USD


def unit_of(call: Call) -> Callable[[str], str]:
    """The caller's value of each assignment unit (the narrowest known one stands in when absent)."""
    caller = call.caller

    def unit(kind: str) -> str:
        if kind == "tenant":
            return "tenant:" + caller.tenant_id
        if kind == "key":
            return "key:" + (caller.key_id or caller.subject)
        user = call.body.get("user")
        if kind == "user":
            return "user:" + (caller.user_id or (user if isinstance(user, str) and user else caller.subject))
        return "session:" + (call.session_key or (user if isinstance(user, str) and user else caller.subject))

    return unit


def is_variant_fault(ending: Ending) -> bool:
    """An ending the variant is to blame for: a server-side error, not the client's (4xx) or a disconnect."""
    if ending.kind is not EndKind.ERROR:
        return False
    error = ending.error
    return not isinstance(error, InferLabError) or error.status >= 500


class ResolveVersion:
    """Replaces ``ResolveModel`` when ``features.registry`` is on."""

    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, resolver: Resolver, stats: VariantStats, price: Price | None = None) -> None:
        self._resolver = resolver
        self._stats = stats
        self._price = price

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        resolution = self._resolver.resolve(call.model, unit_of(call))
        call.model, call.pool, call.model_version = resolution.model, resolution.pool, resolution.version
        if resolution.version is not None:
            call.headers["x-inferlab-model-version"] = resolution.version
        self._resolver.hold(resolution.pool)
        call.defer(lambda ending: self._resolver.let_go(resolution.pool))
        if resolution.experiment is not None:
            call.headers["x-inferlab-experiment"] = resolution.experiment
            call.headers["x-inferlab-variant"] = str(resolution.variant)
            call.defer(self._recorder(call, resolution))
        return await call_next(call)

    def _recorder(self, call: Call, resolution: Resolution) -> Callable[[Ending], None]:
        chunks: list[float] = []
        call.taps.append(lambda _: chunks.append(time.perf_counter()))

        def record(ending: Ending) -> None:
            if ending.kind in (EndKind.DISCONNECT, EndKind.CANCELLED):
                return  # the client left: says nothing about the variant
            ttft = call.first_byte_s if call.first_byte_s is not None else time.perf_counter() - call.started
            gaps = [later - earlier for earlier, later in itertools.pairwise(chunks)]
            prompt, completion = call.usage.known or (0, 0)
            cost = self._price(resolution.model, prompt, completion) if self._price is not None else 0.0
            assert resolution.experiment is not None and resolution.variant is not None
            self._stats.record(resolution.model, resolution.experiment, resolution.variant,
                               Outcome(not is_variant_fault(ending), ttft if ending.ok else None, gaps or None,
                                       completion, cost))

        return record
