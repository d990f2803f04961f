"""The root ``Settings``: top-level keys, one field per section, and the checks that span sections.

A new capability adds its section as a module beside this one and one field here; the sections
import only ``base``, so the package imports nothing else of InferLab and stays at the bottom of
the import graph.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferlab.config.anomaly import AnomalySettings
from inferlab.config.auth import AuthSettings
from inferlab.config.autoscale import AutoscaleSettings
from inferlab.config.base import check_database_url, check_redis_url
from inferlab.config.batches import BatchSettings
from inferlab.config.billing import BillingSettings
from inferlab.config.browser import BrowserSettings
from inferlab.config.cache import CacheSettings
from inferlab.config.capacity import CapacitySettings
from inferlab.config.codelab import CodeLabSettings
from inferlab.config.engines import EngineSettings, UpstreamSettings
from inferlab.config.features import FeatureFlags
from inferlab.config.idempotency import IdempotencySettings
from inferlab.config.limits import QuotaSettings, RateLimitSettings
from inferlab.config.logs import LoggingSettings
from inferlab.config.metering import MeteringSettings
from inferlab.config.models import ModelConfig
from inferlab.config.pricing import PricingSettings
from inferlab.config.registry import RegistrySettings
from inferlab.config.resources import ResourceSettings
from inferlab.config.responses import ResponsesSettings
from inferlab.config.scheduler import SchedulerSettings
from inferlab.config.server import ServerSettings, is_loopback
from inferlab.config.slo import SloSettings
from inferlab.config.tenants import TenantSettings
from inferlab.config.usage import UsageSettings
from inferlab.config.web import WebSettings

Profile = Literal["laptop", "production"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INFERLAB_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    profile: Profile = "laptop"
    data_dir: Path = Path("~/.local/share/inferlab").expanduser()
    database_url: SecretStr | None = Field(
        None, description="sqlite+aiosqlite:///... or postgresql+asyncpg://...; default SQLite in data_dir"
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    features: FeatureFlags = Field(default_factory=FeatureFlags)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    engines: EngineSettings = Field(default_factory=EngineSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    models: list[ModelConfig] = Field(default_factory=list)
    redis_url: SecretStr | None = Field(None, description="redis://host:port/db shared by replicas (limits, cache)")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed (rightmost untrusted hop)"
    )
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    tenants: TenantSettings = Field(default_factory=TenantSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    slo: SloSettings = Field(default_factory=SloSettings)
    metering: MeteringSettings = Field(default_factory=MeteringSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    codelab: CodeLabSettings = Field(default_factory=CodeLabSettings)
    browser: BrowserSettings = Field(default_factory=BrowserSettings)
    responses: ResponsesSettings = Field(default_factory=ResponsesSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)

    billing: BillingSettings = Field(default_factory=BillingSettings)
    anomaly: AnomalySettings = Field(default_factory=AnomalySettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    autoscale: AutoscaleSettings = Field(default_factory=AutoscaleSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        return SecretStr(check_redis_url(url.get_secret_value())) if url is not None else None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: SecretStr | None) -> SecretStr | None:
        return SecretStr(check_database_url(url.get_secret_value())) if url is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from None
        return cidrs

    @model_validator(mode="after")
    def _redis_when_needed(self) -> Settings:
        if self.features.ratelimit and self.ratelimit.backend == "redis" and self.redis_url is None:
            raise ValueError("ratelimit.backend 'redis' needs redis_url (INFERLAB_REDIS_URL)")
        if self.features.resources and self.resources.backend == "redis" and self.redis_url is None:
            raise ValueError("resources.backend 'redis' needs redis_url (INFERLAB_REDIS_URL)")
        if self.features.cache and self.cache.backend == "redis" and self.redis_url is None:
            raise ValueError("cache.backend 'redis' needs redis_url (INFERLAB_REDIS_URL)")
        if self.scheduler.shared_counters == "redis" and self.redis_url is None:
            raise ValueError("scheduler.shared_counters 'redis' needs redis_url (INFERLAB_REDIS_URL)")
        return self

    @model_validator(mode="after")
    def _autoscaled_pools_exist(self) -> Settings:
        names = {model.name for model in self.models}
        unknown = sorted(set(self.autoscale.pools) - names)
        if self.autoscale.enabled and unknown:
            raise ValueError(f"autoscale.pools names models that are not configured: {', '.join(unknown)}")
        if self.autoscale.enabled and self.server.workers > 1:
            raise ValueError("autoscale needs server.workers: 1 (each worker would scale the engines on its own)")
        return self

    @model_validator(mode="after")
    def _registry_with_one_worker(self) -> Settings:
        if self.features.registry and self.server.workers > 1:
            raise ValueError("features.registry needs server.workers: 1 for now (each worker would start a "
                             "version's engines of its own); scale with more gateway processes or pods instead")
        return self

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelConfig]) -> list[ModelConfig]:
        seen: set[str] = set()
        for model in models:
            if model.name in seen:
                raise ValueError(f"model name {model.name!r} is listed twice")
            seen.add(model.name)
        return models

    @model_validator(mode="after")
    def _codelab_models_exist(self) -> Settings:
        names = {m.name for m in self.models}
        named: list[tuple[str, str | None]] = [(f"tiers.{tier}", model) for tier, model in self.codelab.tiers.items()]
        named += [("completion_model", self.codelab.completion_model),
                  ("context.embedding_model", self.codelab.context.embedding_model)]
        for where, model in named:
            if model is not None and model not in names:
                raise ValueError(f"codelab.{where} names {model!r}, which is not a configured model")
        return self

    @model_validator(mode="after")
    def _refuse_remote_without_auth(self) -> Settings:
        if not is_loopback(self.server.host) and not self.server.insecure_allow_remote and not self.features.auth:
            raise ValueError(
                f"server.host {self.server.host!r} is not a loopback address and authentication is off: turn on "
                "features.auth, or pass --insecure-allow-remote (server.insecure_allow_remote) to accept that"
            )
        return self

    @model_validator(mode="after")
    def _browser_server_models_exist(self) -> Settings:
        if not self.features.browser:
            return self
        names = {m.name for m in self.models}
        for model in self.browser.models:
            server = model.server_model or model.name
            if model.server_model is not None and server not in names:
                raise ValueError(f"browser.models: {model.name!r} falls back to {server!r}, which is not a configured "
                                 "model")
        return self

    @model_validator(mode="after")
    def _anomaly_needs_the_store(self) -> Settings:
        if self.anomaly.enabled and not (self.features.metering or self.features.auth):
            raise ValueError("anomaly.enabled needs the store: features.metering (the usage ledger it reads) "
                             "or features.auth")
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)
