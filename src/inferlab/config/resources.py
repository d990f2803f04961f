"""``resources:``: per-tenant shares of each model pool's capacity (``features.resources``).

A pool's capacity is what its replicas hold at once — managed llama.cpp replicas: ``parallel``
slots of ``context_size`` tokens each; any other engine: configured here (a pool whose capacity is
not known is not allocated). Each tenant's share (guarantee, limit, borrowing) comes from its tier
(``tenants:``), overridden per tenant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel


class PoolCapacitySettings(StrictModel):
    sequences: int | None = Field(None, ge=0, description="requests at once; default: from the replicas")
    kv_tokens: int | None = Field(None, ge=0, description="KV-cache tokens; default: from the replicas")
    overcommit: float = Field(1.0, gt=0, le=16, description="admit up to capacity × this")
    plan_model: str | None = Field(None, description="the planning catalogue's model id, to price scaling advice")
    plan_hardware: list[str] = Field(default_factory=list, description="accelerators (catalogue ids) to price")
    plan_engine: str = Field("llama.cpp", description="the planning catalogue's engine id")


class ResourceSettings(StrictModel):
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: redis when redis_url is set")
    pools: dict[str, PoolCapacitySettings] = Field(default_factory=dict, description="per model name")
    queue_timeout_s: float = Field(
        30.0, ge=0, description="a request over its share waits this long for capacity, then gets 429")
    default_max_tokens: int = Field(1024, ge=1, description="KV tokens reserved for completion without max_tokens")
    lease_ttl_s: float = Field(30.0, gt=0, description="a grant a dead gateway held frees after this")
    refresh_s: float = Field(5.0, gt=0, description="tenants' shares re-read this often")
    redis_prefix: str = Field("inferlab:res:", min_length=1)
