"""``autoscale:``: engine replicas that follow the load, down to zero (off by default).

One entry per model under ``pools:``; a model not listed is not scaled. ``mode: advisory`` logs
every decision and changes nothing (the way to try a policy on real traffic first).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from inferlab.config.base import HTTP, StrictModel, check_url

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ScheduledBounds(StrictModel):
    """Bounds in force on some days between two times of day (UTC), e.g. more replicas in office hours."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS))
    start: str = Field("00:00", description="HH:MM UTC, inclusive")
    end: str = Field("24:00", description="HH:MM UTC, exclusive; before start: the window crosses midnight")
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=0)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if value != "24:00" and not _HHMM.match(value):
            raise ValueError("a time of day is HH:MM (00:00 to 24:00)")
        return value


class KubernetesTarget(StrictModel):
    """The Deployment whose ``scale`` subresource the autoscaler sets."""

    api_url: str = Field("https://kubernetes.default.svc", description="the API server")
    namespace: str = Field("default", min_length=1)
    deployment: str = Field(min_length=1)
    token: SecretStr | None = Field(None, description="a bearer token; in a pod, the service account's is read")
    token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ca_file: str | None = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

    @field_validator("api_url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url, HTTP)


class PoolAutoscale(StrictModel):
    min_replicas: int = Field(1, ge=0, description="0: scale to zero after idle_s without a request")
    max_replicas: int = Field(4, ge=1)
    target: float = Field(4.0, gt=0, description="requests in the system (in flight + queued) one replica takes")
    stable_window_s: float = Field(60.0, gt=0)
    panic_window_s: float = Field(6.0, gt=0)
    panic_threshold: float = Field(2.0, ge=1)
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_down_delay_s: float = Field(15.0, ge=0)
    headroom: float = Field(0.75, ge=0, description="× √load replicas of spare room")
    idle_s: float = Field(300.0, gt=0)
    kv_target: float = Field(0.85, gt=0, le=1, description="engine KV-cache use above this adds replicas")
    ttft_slo_ms: float | None = Field(None, gt=0, description="default: the default tier's ttft_p95_ms")
    actuator: Literal["local", "kubernetes"] = "local"
    kubernetes: KubernetesTarget | None = None
    schedule: list[ScheduledBounds] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PoolAutoscale:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.panic_window_s > self.stable_window_s:
            raise ValueError("panic_window_s must not exceed stable_window_s")
        if self.actuator == "kubernetes" and self.kubernetes is None:
            raise ValueError("actuator 'kubernetes' needs a kubernetes: {deployment: ...} target")
        return self


class AutoscaleSettings(StrictModel):
    enabled: bool = False
    mode: Literal["active", "advisory"] = Field("active", description="advisory: log decisions, change nothing")
    interval_s: float = Field(2.0, gt=0, le=60, description="time between two decisions per pool")
    activation_timeout_s: float = Field(120.0, gt=0, description="how long a request waits for a pool at zero")
    drain_timeout_s: float = Field(600.0, gt=0, description="a replica scaled down is stopped after this at the latest")
    history: int = Field(50, ge=1, le=10_000, description="decisions kept per pool for GET /admin/autoscaler")
    pools: dict[str, PoolAutoscale] = Field(default_factory=dict)
