"""The gateway's Prometheus metrics, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from inferlab.metrics.anomaly import AnomalyMetrics
from inferlab.metrics.metering import MeteringMetrics
from inferlab.metrics.registry import RegistryMetrics
from inferlab.metrics.slo import SloMetrics
from inferlab.metrics.tenants import TenantMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNKNOWN_MODEL = "unknown"  # the model label of a request refused before a configured model was known


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None, *, models: Iterable[str] = (),
                 top_tenants: int = 20) -> None:
        """``models``: the configured model names, the only values the request metrics' model label
        takes (anything else is ``unknown``), so a client cannot grow the label set."""
        self._models = frozenset(models)
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
        self.group_transitions = Counter(
            "inferlab_engine_group_transitions", "Engine group state changes, by the state entered", ["group", "state"],
            registry=r,
        )
        self.group_recovery = Histogram(
            "inferlab_engine_group_recovery_seconds", "From a group leaving service to serving again", ["group"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300), registry=r,
        )
        self.queue_depth = Gauge("inferlab_queue_depth", "Requests waiting for a replica slot", ["model"], registry=r)
        self.queue_wait = Histogram(
            "inferlab_queue_wait_seconds", "Time requests waited for a replica slot, by outcome",
            ["model", "outcome"], buckets=TTFT_BUCKETS, registry=r,
        )
        self.replica_healthy = Gauge(
            "inferlab_replica_healthy", "1 when a replica is routable and its breaker closed", ["model", "replica"],
            registry=r,
        )
        self.replica_breaker_open = Gauge(
            "inferlab_replica_breaker_open", "1 when a replica's circuit breaker is open (0.5: half-open)",
            ["model", "replica"], registry=r,
        )
        self.retries = Counter(
            "inferlab_retries", "Failover retries (reason=retry) and retries refused by the budget",
            ["model", "reason"], registry=r,
        )
        self.ratelimit_rejections = Counter(
            "inferlab_ratelimit_rejections", "Requests refused with 429, by the limit that refused them",
            ["kind"], registry=r,
        )
        self.ratelimit_fallbacks = Counter(
            "inferlab_ratelimit_fallbacks", "Admissions decided without Redis, by failure policy", ["policy"],
            registry=r,
        )
        self.ratelimit_outstanding = Gauge(
            "inferlab_ratelimit_reservations", "Admitted requests whose reservation is not settled yet", registry=r,
        )
        self.cache_requests = Counter(
            "inferlab_cache_requests", "Response-cache lookups of cacheable requests (hit, miss, bypass, error)",
            ["result"], registry=r,
        )
        self.code_events = Counter(
            "inferlab_code_completion_events", "CodeLab completions shown, accepted and rejected in editors",
            ["model", "language", "event"], registry=r,
        )
        self.dependency_up = Gauge(
            "inferlab_dependency_up", "1 when a dependency (database, redis) passed its last health check, "
            "refreshed at each scrape", ["dependency"], registry=r,
        )
        self.tenants = TenantMetrics(r, top_tenants)
        self.slo = SloMetrics(r)
        self.metering = MeteringMetrics(r)
        self.variants = RegistryMetrics(r)
        self.anomaly = AnomalyMetrics(r)
        # label lookups take a lock and build a tuple: cache the children used on every request
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._token_children: dict[str, tuple[Counter, Counter]] = {}

    def code_event(self, model: str, language: str, kind: str) -> None:
        self.code_events.labels(model, language[:32], kind).inc()

    def observe_request(self, model: str, route: str, status: int, seconds: float) -> None:
        """``route``: a route template (bounded); ``model`` is bounded here."""
        if model not in self._models:
            model = UNKNOWN_MODEL
        key = (model, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(model, route, str(status)), self.latency.labels(model, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_tokens(self, model: str, prompt: int, completion: int) -> None:
        children = self._token_children.get(model)
        if children is None:
            children = (self.tokens.labels(model, "prompt"), self.tokens.labels(model, "completion"))
            self._token_children[model] = children
        if prompt:
            children[0].inc(prompt)
        if completion:
            children[1].inc(completion)

    # QueueObserver (inferlab.scheduler)
    def queue_changed(self, model: str, depth: int) -> None:
        self.queue_depth.labels(model).set(depth)

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None:
        self.queue_wait.labels(model, outcome).observe(waited_s)

    # PoolObserver (inferlab.router.pool)
    def replica_changed(self, model: str, replica: str, healthy: bool, breaker: str) -> None:
        self.replica_healthy.labels(model, replica).set(1 if healthy else 0)
        self.replica_breaker_open.labels(model, replica).set({"closed": 0.0, "half_open": 0.5}.get(breaker, 1.0))

    def retried(self, model: str, reason: str) -> None:
        self.retries.labels(model, reason).inc()

    # EngineObserver
    def engine_up_changed(self, engine: str, up: bool) -> None:
        self.engine_up.labels(engine).set(1 if up else 0)

    def engine_restarted(self, engine: str) -> None:
        self.engine_restarts.labels(engine).inc()

    # GroupObserver: a group is an engine too (inferlab_engine_up, inferlab_engine_restarts)
    def group_changed(self, group: str, state: str) -> None:
        self.group_transitions.labels(group, state).inc()
        self.engine_up.labels(group).set(1 if state == "ready" else 0)

    def group_restarted(self, group: str) -> None:
        self.engine_restarts.labels(group).inc()

    def group_recovered(self, group: str, seconds: float) -> None:
        self.group_recovery.labels(group).observe(seconds)

    def dependencies_checked(self, up: dict[str, bool]) -> None:
        for name, healthy in up.items():
            self.dependency_up.labels(name).set(1 if healthy else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
