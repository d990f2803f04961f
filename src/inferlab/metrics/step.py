"""The metrics steps: requests in flight, time to first token and tokens, per model and per tenant
(``CountRequests``); requests refused — by the tier, the limits, the quota or the allocator — per
tenant, tier and reason (``CountRefusals``, first in the chain so it sees every refusal)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

from inferlab.errors import InferLabError
from inferlab.metrics.prometheus import GatewayMetrics
from inferlab.pipeline import Call, Ending, Next, Reply

CACHED_TENANTS = 10_000  # (tenant, tier) gauge children kept; beyond, looked up per request


class CountRequests:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        self._in_flight: dict[str, Gauge] = {}  # label lookups take a lock: one child per model, kept
        self._ttft: dict[str, Histogram] = {}
        self._tenant_in_flight: dict[tuple[str, str], Gauge] = {}  # per (tenant, tier): bounded by the labels

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        gauge = self._in_flight.get(call.model)
        if gauge is None:
            gauge = self._in_flight[call.model] = self._metrics.in_flight.labels(call.model)
        gauge.inc()
        key = (call.caller.tenant_id, call.tier.name if call.tier else "")
        tenant = self._tenant_in_flight.get(key)
        if tenant is None:
            tenants = self._metrics.tenants
            tenant = tenants.in_flight.labels(tenants.label(key[0]), key[1])
            if len(self._tenant_in_flight) < CACHED_TENANTS:
                self._tenant_in_flight[key] = tenant
        tenant.inc()
        ttft = self._ttft.get(call.model)
        if ttft is None:
            ttft = self._ttft[call.model] = self._metrics.ttft.labels(call.model)
        call.defer(_Observe(self._metrics, call, gauge, tenant, ttft))
        return await call_next(call)


class CountRefusals:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    REFUSALS = frozenset({400, 403, 429})

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._tenants = metrics.tenants

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        try:
            return await call_next(call)
        except InferLabError as exc:
            if exc.status in self.REFUSALS:
                self._tenants.refusal(call.caller.tenant_id, call.tier.name if call.tier else "", exc.code or "refused")
            raise


class _Observe:
    __slots__ = ("_call", "_gauge", "_metrics", "_tenant", "_ttft")

    def __init__(self, metrics: GatewayMetrics, call: Call, gauge: Gauge, tenant: Gauge, ttft: Histogram) -> None:
        self._metrics = metrics
        self._call = call
        self._gauge = gauge
        self._tenant = tenant
        self._ttft = ttft

    def __call__(self, ending: Ending) -> None:
        call = self._call
        self._gauge.dec()
        self._tenant.dec()
        if call.first_byte_s is not None:
            self._ttft.observe(call.first_byte_s)
        if call.usage.known is not None:
            self._metrics.observe_tokens(call.model, *call.usage.known)
