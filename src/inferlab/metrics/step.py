"""The metrics step: requests in flight, time to first token and tokens, per model."""

from __future__ import annotations

from prometheus_client import Gauge

from inferlab.metrics.prometheus import GatewayMetrics
from inferlab.pipeline import Call, Ending, Next, Reply


class CountRequests:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        self._in_flight: dict[str, Gauge] = {}  # label lookups take a lock: one child per model, kept

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        gauge = self._in_flight.get(call.model)
        if gauge is None:
            gauge = self._in_flight[call.model] = self._metrics.in_flight.labels(call.model)
        gauge.inc()
        call.defer(_Observe(self._metrics, call, gauge))
        return await call_next(call)


class _Observe:
    __slots__ = ("_call", "_gauge", "_metrics")

    def __init__(self, metrics: GatewayMetrics, call: Call, gauge: Gauge) -> None:
        self._metrics = metrics
        self._call = call
        self._gauge = gauge

    def __call__(self, ending: Ending) -> None:
        call = self._call
        self._gauge.dec()
        if call.first_byte_s is not None:
            self._metrics.ttft.labels(call.model).observe(call.first_byte_s)
        if call.usage.known is not None:
            self._metrics.observe_tokens(call.model, *call.usage.known)
