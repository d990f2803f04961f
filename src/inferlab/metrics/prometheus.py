"""The gateway's Prometheus metrics, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "inferlab_requests", "Requests answered, by model, route and HTTP status",
            ["model", "route", "status"], registry=r,
        )
        self.latency = Histogram(
            "inferlab_request_duration_seconds", "End-to-end request latency at the gateway",
            ["model", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "inferlab_time_to_first_token_seconds", "Time to the first streamed token",
            ["model"], buckets=TTFT_BUCKETS, registry=r,
        )
        self.tokens = Counter(
            "inferlab_tokens", "Tokens processed, by model and direction (prompt|completion)",
            ["model", "direction"], registry=r,
        )
        self.in_flight = Gauge("inferlab_requests_in_flight", "Requests being served", ["model"], registry=r)
        self.engine_up = Gauge("inferlab_engine_up", "1 when a managed engine is ready", ["engine"], registry=r)
        self.engine_restarts = Counter(
            "inferlab_engine_restarts", "Restarts of managed engines", ["engine"], registry=r
        )

    def observe_request(self, model: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(model, route, str(status)).inc()
        self.latency.labels(model, route).observe(seconds)

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        if prompt:
            self.tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, "completion").inc(completion)

    # EngineObserver
    def engine_up_changed(self, engine: str, up: bool) -> None:
        self.engine_up.labels(engine).set(1 if up else 0)

    def engine_restarted(self, engine: str) -> None:
        self.engine_restarts.labels(engine).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
