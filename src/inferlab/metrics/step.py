"""The metrics step: requests in flight, time to first token and tokens, per model."""

from __future__ import annotations

from inferlab.metrics.prometheus import GatewayMetrics
from inferlab.pipeline import Call, Ending, Next, Reply


class CountRequests:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        gauge = self._metrics.in_flight.labels(call.model)
        gauge.inc()
        call.defer(_Observe(self._metrics, call))
        return await call_next(call)


class _Observe:
    __slots__ = ("_call", "_metrics")

    def __init__(self, metrics: GatewayMetrics, call: Call) -> None:
        self._metrics = metrics
        self._call = call

    def __call__(self, ending: Ending) -> None:
        call, metrics = self._call, self._metrics
        metrics.in_flight.labels(call.model).dec()
        if call.first_byte_s is not None:
            metrics.ttft.labels(call.model).observe(call.first_byte_s)
        if call.usage.known is not None:
            metrics.observe_tokens(call.model, *call.usage.known)
