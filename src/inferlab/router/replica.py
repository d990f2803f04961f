"""One replica of a model as the router tracks it: its backend, slots, breaker, health and load."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from inferlab.router.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from inferlab.router.load import UNKNOWN_LOAD, EngineKind, EngineLoad
from inferlab.types import InferenceBackend

MISCONFIGURED_RECHECK_S = 30.0  # a replica whose engine refused our credentials is tried again after this


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"  # the replica's fault: 5xx, timeout, connection error
    NEUTRAL = "neutral"  # says nothing about the replica: the engine's 4xx, the client went away


@dataclass(frozen=True, slots=True)
class ReplicaEndpoint:
    """Where the engine's own operational endpoints are (``/metrics``, ``/slots``), if anywhere."""

    base_url: str | None = None  # the engine root, without /v1
    engine: EngineKind = "generic"
    api_key: str | None = None


class Replica:
    """Mutable runtime state of one replica; strategies read it through ``ReplicaView``."""

    __slots__ = (
        "backend",
        "breaker",
        "config_error",
        "config_error_until",
        "cordoned",
        "endpoint",
        "ewma_alpha",
        "ewma_s",
        "failures",
        "in_flight",
        "limit",
        "load",
        "name",
        "next_probe_at",
        "probe_detail",
        "probe_failures",
        "probe_healthy",
        "requests",
        "was_available",
    )

    def __init__(
        self,
        backend: InferenceBackend,
        *,
        limit: int = 64,
        endpoint: ReplicaEndpoint | None = None,
        breaker: BreakerPolicy | None = None,
        ewma_alpha: float = 0.3,
    ) -> None:
        if limit < 1:
            raise ValueError("a replica's concurrency limit must be at least 1")
        self.name = backend.name
        self.backend = backend
        self.endpoint = endpoint or ReplicaEndpoint()
        self.limit = limit
        self.in_flight = 0
        self.breaker = CircuitBreaker(breaker)
        self.probe_healthy = True  # optimistic until a probe says otherwise
        self.probe_detail = ""
        self.probe_failures = 0
        self.load: EngineLoad = UNKNOWN_LOAD
        self.ewma_s: float | None = None
        self.ewma_alpha = ewma_alpha
        self.requests = 0
        self.failures = 0
        self.was_available = True
        self.next_probe_at = 0.0
        self.config_error: str | None = None  # the engine refused the gateway's configuration (credentials)
        self.config_error_until = 0.0
        self.cordoned = False  # being drained before it stops (autoscaling down): no new requests

    def routable(self, now: float) -> bool:
        """Healthy enough to be sent a request now (ignoring its concurrency limit). A misconfigured
        replica is not, until its re-check time: then requests may show whether it was fixed."""
        if self.cordoned or (self.config_error is not None and now < self.config_error_until):
            return False
        return self.probe_healthy and self.backend.is_available() and self.breaker.allows(now)

    def healthy(self) -> bool:
        return (
            self.config_error is None and self.probe_healthy and self.backend.is_available()
            and self.breaker.state is BreakerState.CLOSED
        )

    def misconfigured(self, reason: str, now: float) -> None:
        """The engine refused the gateway's own configuration: out of routing until a re-check,
        visible in the snapshot; not a breaker failure (retrying sooner cannot fix it)."""
        self.config_error = reason
        self.config_error_until = now + MISCONFIGURED_RECHECK_S

    def retry_in(self, now: float) -> float:
        """Seconds until this replica may be tried again (0 when it may be tried now)."""
        waits = self.breaker.retry_in(now)
        if self.config_error is not None:
            waits = max(waits, self.config_error_until - now)
        return max(0.0, waits)

    def dispatched(self) -> None:
        self.in_flight += 1
        self.requests += 1
        self.breaker.on_dispatch()

    def finished(self, outcome: Outcome, now: float, ttfb_s: float | None) -> bool:
        """Free the slot and learn from the outcome; True when the breaker just opened."""
        self.in_flight -= 1
        if outcome is Outcome.SUCCESS:
            self.config_error = None
            self.breaker.on_success()
            if ttfb_s is not None:
                self.ewma_s = ttfb_s if self.ewma_s is None else self.ewma_s + self.ewma_alpha * (ttfb_s - self.ewma_s)
            return False
        if outcome is Outcome.FAILURE:
            self.failures += 1
            return self.breaker.on_failure(now)
        self.breaker.on_neutral()
        return False

    def snapshot(self, now: float) -> dict[str, Any]:
        breaker = self.breaker
        engine = getattr(self.backend, "engine", None)
        return {
            "name": self.name,
            "engine": self.endpoint.engine,
            "url": self.endpoint.base_url,
            "pid": getattr(engine, "pid", None),
            "engine_state": getattr(getattr(engine, "state", None), "value", None),
            "healthy": self.healthy(),
            "available": self.backend.is_available(),
            "misconfigured": self.config_error is not None,
            "cordoned": self.cordoned,
            "error": self.config_error,
            "probe": {"healthy": self.probe_healthy, "detail": self.probe_detail},
            "breaker": {
                "state": breaker.state.value,
                "consecutive_failures": breaker.consecutive_failures,
                "ejections": breaker.ejections,
                "opened_total": breaker.opened_total,
                "retry_in_s": round(breaker.retry_in(now), 3),
            },
            "in_flight": self.in_flight,
            "limit": self.limit,
            "load": {**self.load.to_dict(), "age_s": round(now - self.load.scraped_at, 3) if self.load.scraped_at else None},
            "ewma_ttfb_ms": round(self.ewma_s * 1000, 3) if self.ewma_s is not None else None,
            "requests": self.requests,
            "failures": self.failures,
        }
