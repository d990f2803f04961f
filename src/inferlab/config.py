"""Typed settings: one YAML file, a shipped profile under it, ``INFERLAB_*`` environment over it.

Precedence, highest first: explicit overrides (CLI flags) > environment (``INFERLAB_SERVER__PORT``)
> the config file > the profile (``laptop`` by default) > defaults below.
Settings are validated once, at start-up, and passed down as an object; nothing reads
``os.environ`` past this module.
"""

from __future__ import annotations

import ipaddress
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from inferlab.config_checks import (
    HTTP,
    check_database_url,
    check_redis_url,
    check_url,
    unknown_environment,
    unknown_setting_hint,
)

EMBEDDED_MODEL = "embedded:smollm2"
PROFILES = ("laptop", "production")


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="413 above this")
    drain_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: how long in-flight work may finish")
    insecure_allow_remote: bool = False
    max_tokens_limit: int = Field(131072, ge=1, description="upper bound accepted for max_tokens")
    max_n: int = Field(16, ge=1, description="upper bound accepted for n")
    docs: bool = Field(True, description="/docs and the OpenAPI documents without credentials (off: no /docs, "
                                         "and the documents need a credential)")
    header_timeout_s: float = Field(10.0, gt=0, description="a request head must be in this long after its 1st byte")
    keepalive_timeout_s: float = Field(75.0, gt=0, description="close a connection idle this long between requests")
    body_timeout_s: float = Field(30.0, gt=0, description="408 when the body is not in within this (+ min rate)")
    body_min_rate_bytes_s: float = Field(1024.0, gt=0, description="each such many body bytes earn one more second")


class FeatureFlags(_Strict):
    metrics: bool = True
    auth: bool = Field(False, description="API keys / JWT on every route but /health, /ready, /metrics "
                                          "(and /docs, /openapi.json, /admin/openapi.json while server.docs)")
    planning_api: bool = True
    ratelimit: bool = Field(False, description="rate limits (ratelimit:) on the inference routes")
    cache: bool = Field(False, description="exact-match response cache (cache:) for deterministic requests")


class UpstreamSettings(_Strict):
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0, description="max silence from an engine mid-request")
    max_connections: int = Field(1024, ge=1)
    max_stream_line_bytes: int = Field(
        1024 * 1024, ge=1024, description="longest line of an engine's stream (SSE or NDJSON), else an error"
    )


class EngineSettings(_Strict):
    prefer: Literal["auto", "llama-server", "llama-cpp-python"] = "auto"
    llama_server_path: Path | None = None
    cache_dir: Path = Path("~/.cache/inferlab").expanduser()
    threads: int | None = Field(None, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    restart_backoff_initial_s: float = Field(0.5, gt=0)
    restart_backoff_max_s: float = Field(30.0, gt=0)
    health_interval_s: float = Field(2.0, gt=0)


Role = Literal["platform-admin", "tenant-admin", "member"]


class JwtSettings(_Strict):
    """Optional JWT bearer tokens from one issuer; off while ``issuer`` is unset."""

    issuer: str | None = None
    audience: str | None = None
    jwks_file: Path | None = Field(None, description="a JWKS document on disk")
    jwks_url: str | None = Field(None, description="the issuer's JWKS endpoint (fetched at start-up, refreshed)")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_s: float = Field(30.0, ge=0)
    tenant_claim: str = "tenant"
    role_claim: str = "role"
    role_map: dict[str, Role] = Field(default_factory=dict, description="claim value -> role (names map to themselves)")
    default_role: Role = "member"
    groups_claim: str = Field("scope", description="space-separated route groups (inference admin billing)")
    default_groups: list[Literal["inference", "admin", "billing"]] = Field(default_factory=lambda: ["inference"])

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, url: str | None) -> str | None:
        return check_url(url, HTTP) if url is not None else None

    @model_validator(mode="after")
    def _has_keys(self) -> JwtSettings:
        if self.issuer and not (self.jwks_file or self.jwks_url):
            raise ValueError("jwt.issuer needs jwt.jwks_file or jwt.jwks_url")
        if any(a.upper().startswith("HS") or a.lower() == "none" for a in self.algorithms):
            raise ValueError("jwt.algorithms: only asymmetric algorithms (RS*, ES*, PS*, EdDSA) are accepted")
        return self


class AuthSettings(_Strict):
    """API keys and the store behind them. Replicas sharing one database must share one ``pepper``
    (config or ``INFERLAB_AUTH__PEPPER``); unset, one is generated into ``<data_dir>/secret.key``."""

    pepper: SecretStr | None = Field(None, description="server-side secret keyed into every API-key hash")
    key_cache_ttl_s: float = Field(5.0, gt=0, le=60, description="how long a validated key is trusted in-process")
    key_cache_size: int = Field(10000, ge=16)
    last_used_flush_s: float = Field(30.0, gt=0, description="last-used times are written in batches")
    store_timeout_s: float = Field(2.0, gt=0, le=60, description="bound on every database call; beyond: 503")
    store_retry_s: float = Field(1.0, gt=0, description="while the database is down, probe it this often")
    outage_grace_s: float = Field(
        300.0, ge=0, description="database down: keys validated this recently keep working (0: none do)"
    )
    auto_migrate: bool = Field(True, description="`serve` upgrades the database schema on start")
    bootstrap: bool = Field(True, description="first start: create a platform-admin key and print it once")
    protect_metrics: bool = Field(False, description="require a platform-admin credential on /metrics")
    jwt: JwtSettings = Field(default_factory=JwtSettings)


LimitScope = Literal["key", "user", "tenant", "model", "key+model", "user+model", "tenant+model", "global"]
FailurePolicy = Literal["fail-open-local", "fail-closed"]


class LimitSpec(_Strict):
    """Limits on one scope: every key (user, tenant...) gets its own buckets of these sizes."""

    scope: LimitScope
    rpm: int | None = Field(None, ge=0, description="requests per window")
    tpm: int | None = Field(None, ge=0, description="tokens per window (prompt + max_tokens reserved)")
    max_concurrent: int | None = Field(None, ge=0, description="requests in flight")


class RateLimitFailure(_Strict):
    """What a replica does while Redis does not answer, per limit type."""

    requests: FailurePolicy = "fail-open-local"
    tokens: FailurePolicy = "fail-open-local"
    concurrent: FailurePolicy = "fail-open-local"
    quota: FailurePolicy = Field("fail-closed", description="budgets: a replica alone cannot keep them exact")


class RateLimitSettings(_Strict):
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: redis when redis_url is set")
    limits: list[LimitSpec] = Field(default_factory=list, description="defaults per scope")
    window_s: float = Field(60.0, gt=0, description="the sliding window of rpm and tpm")
    default_max_tokens: int = Field(1024, ge=0, description="completion tokens reserved when max_tokens is absent")
    lease_ttl_s: float = Field(
        10.0, gt=0, description="concurrency lease, renewed every third of it while the request lives: "
        "a crashed replica's slots free after this")
    redis_timeout_s: float = Field(0.25, gt=0, description="bound on every Redis call; beyond: failure policy")
    redis_prefix: str = Field("inferlab:rl:", min_length=1, description="namespace of the limiter's Redis keys")
    redis_retry_s: float = Field(1.0, gt=0, description="after a Redis failure, try it again after this")
    expected_replicas: int = Field(1, ge=1, description="fail-open-local: each replica enforces limit / this")
    failure: RateLimitFailure = Field(default_factory=RateLimitFailure)


class QuotaSpec(_Strict):
    """Budgets per calendar day / month (UTC) on one scope; tokens and spend (USD, from ``pricing``)."""

    scope: Literal["key", "user", "tenant"]
    daily_tokens: int | None = Field(None, ge=0)
    monthly_tokens: int | None = Field(None, ge=0)
    daily_spend_usd: float | None = Field(None, ge=0)
    monthly_spend_usd: float | None = Field(None, ge=0)


class QuotaSettings(_Strict):
    limits: list[QuotaSpec] = Field(default_factory=list, description="defaults per scope")


class Price(_Strict):
    input_per_million: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output_per_million: float = Field(0.0, ge=0, description="USD per million completion tokens")


class PricingSettings(_Strict):
    """The price book: spend quotas now, cost tracking later."""

    default: Price = Field(default_factory=Price)
    models: dict[str, Price] = Field(default_factory=dict)

    def price(self, model: str) -> Price:
        return self.models.get(model, self.default)


class CacheSettings(_Strict):
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: redis when redis_url is set")
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10000, ge=1, description="memory: LRU bound")
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="memory: LRU bound in bytes")
    max_entry_bytes: int = Field(1024 * 1024, ge=1, description="larger responses are not cached")
    redis_timeout_s: float = Field(0.25, gt=0, description="a slower Redis is a miss, never a wait")
    redis_prefix: str = Field("inferlab:cache:", min_length=1)


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = True
    log_prompts: bool = Field(False, description="log each request's prompt (INFO, with its request id)")
    prompt_max_chars: int = Field(2000, ge=0, description="log_prompts: characters of a prompt logged at most")


class PrefixRoutingSettings(_Strict):
    """prefix_aware routing: block size, index bound, and how the match is weighed against load."""

    block_chars: int = Field(256, ge=16, description="characters per hashed prompt block")
    max_blocks: int = Field(64, ge=1, description="prompt blocks considered per request")
    capacity_blocks: int = Field(16384, ge=1, description="LRU bound of the index, per replica")
    prefix_weight: float = Field(1.0, ge=0)
    queue_weight: float = Field(0.5, ge=0)
    kv_weight: float = Field(0.3, ge=0)
    balance_abs_threshold: float = Field(4.0, ge=0, description="imbalance: max - min load above this...")
    balance_rel_threshold: float = Field(1.5, ge=1, description="...and max above this x min: least-loaded")


class RoutingSettings(_Strict):
    strategy: Literal[
        "round_robin", "least_outstanding", "power_of_two", "latency_ewma", "session_affinity", "prefix_aware"
    ] = "least_outstanding"
    session_header: str = Field("x-session-id", description="session_affinity: conversation header (else `user`)")
    prefix: PrefixRoutingSettings = Field(default_factory=PrefixRoutingSettings)


class QueueSettings(_Strict):
    max_depth: int = Field(256, ge=0, description="requests waiting for a replica slot; beyond: 503")
    max_wait_s: float = Field(30.0, gt=0, description="longest wait for a slot; then 503 + Retry-After")


class HealthSettings(_Strict):
    probe_interval_s: float = Field(5.0, gt=0)
    probe_timeout_s: float = Field(2.0, gt=0)
    unhealthy_threshold: int = Field(2, ge=1, description="failed probes before a replica is ejected")
    failure_threshold: int = Field(3, ge=1, description="consecutive failed requests that open the breaker")
    ejection_base_s: float = Field(1.0, gt=0, description="first ejection; doubles each time, up to max")
    ejection_max_s: float = Field(30.0, gt=0)
    scrape_interval_s: float = Field(1.0, gt=0, description="engine /metrics (and llama.cpp /slots)")


class RetrySettings(_Strict):
    max_attempts: int = Field(3, ge=1, description="per request, first attempt included")
    budget_ratio: float = Field(0.2, ge=0, description="retries allowed per request, on average")
    budget_min_per_s: float = Field(5.0, ge=0, description="retries always allowed per second")
    attempt_timeout_s: float | None = Field(None, gt=0, description="non-streamed attempt; None: derived (below)")
    first_byte_timeout_s: float | None = Field(None, gt=0, description="streamed attempt, until its first chunk")
    stream_idle_timeout_s: float | None = Field(None, gt=0, description="stream, between chunks; None: first byte's")
    timeout_floor_s: float = Field(20.0, gt=0, description="derived timeouts: the fixed part of the first byte's")
    prefill_tokens_per_s: float = Field(100.0, gt=0, description="derived timeouts: slowest expected prefill")
    decode_tokens_per_s: float = Field(5.0, gt=0, description="derived timeouts: slowest expected generation")


class ModelConfig(_Strict):
    name: str = Field(min_length=1, max_length=256)
    backend: Literal["llamacpp", "openai", "ollama"]
    url: str | None = Field(None, description="base URL of an engine you run (openai: .../v1)")
    path: str | None = Field(None, description="llamacpp: GGUF path, or embedded:smollm2")
    served_name: str | None = Field(None, description="the engine's own name for the model")
    api_key: SecretStr | None = None
    replicas: int = Field(1, ge=1, le=64)
    context_size: int = Field(4096, ge=256)
    parallel: int = Field(4, ge=1, description="llamacpp: concurrent sequences (slots)")
    embeddings: bool = Field(True, description="llamacpp: also serve /v1/embeddings")
    engine_args: list[str] = Field(default_factory=list)
    fim_template: str | None = None
    version: str | None = Field(
        None, description="the response cache's model version; default: a hash of what serves the model"
    )
    urls: list[str] = Field(default_factory=list, description="several replicas of an engine you run")
    engine: Literal["llamacpp", "vllm", "sglang", "tgi", "generic"] | None = Field(
        None, description="what runs behind url/urls (health probe and load metrics); default from backend"
    )
    max_concurrency_per_replica: int | None = Field(
        None, ge=1, description="requests in flight per replica; default: parallel (managed), else 256"
    )
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    def cache_version(self) -> str:
        """Changes whenever what answers for this model changes: cached answers of the old one are unreachable."""
        if self.version:
            return self.version
        import hashlib

        served = [self.backend, self.url, self.urls, self.path, self.served_name, self.engine_args, self.fim_template]
        return hashlib.sha256(repr(served).encode()).hexdigest()[:16]

    @field_validator("url")
    @classmethod
    def _engine_url(cls, url: str | None) -> str | None:
        return check_url(url, HTTP) if url is not None else None

    @field_validator("urls")
    @classmethod
    def _engine_urls(cls, urls: list[str]) -> list[str]:
        for index, url in enumerate(urls):
            try:
                check_url(url, HTTP)
            except ValueError as exc:
                raise ValueError(f"urls[{index}] {exc}") from None
        return urls

    @field_validator("fim_template")
    @classmethod
    def _known_fim_template(cls, name: str | None) -> str | None:
        if name is not None:
            from inferlab.code.fim import fim_template

            fim_template(name)
        return name

    @model_validator(mode="after")
    def _backend_needs(self) -> ModelConfig:
        if self.url and self.urls:
            raise ValueError("give either 'url' or 'urls', not both")
        if self.backend in ("openai", "ollama") and not self.url and not self.urls:
            raise ValueError(f"backend {self.backend!r} needs 'url' (or 'urls')")
        if self.backend == "llamacpp" and not self.path and not self.url and not self.urls:
            raise ValueError("backend 'llamacpp' needs 'path' (a GGUF file or embedded:smollm2)")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INFERLAB_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    profile: Literal["laptop", "production"] = "laptop"
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
        if self.features.cache and self.cache.backend == "redis" and self.redis_url is None:
            raise ValueError("cache.backend 'redis' needs redis_url (INFERLAB_REDIS_URL)")
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
    def _refuse_remote_without_auth(self) -> Settings:
        if not is_loopback(self.server.host) and not self.server.insecure_allow_remote and not self.features.auth:
            raise ValueError(
                f"server.host {self.server.host!r} is not a loopback address and authentication is off: turn on "
                "features.auth, or pass --insecure-allow-remote (server.insecure_allow_remote) to accept that"
            )
        return self

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_profile(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise ConfigError(f"profile: unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("inferlab").joinpath("profiles", f"{name}.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text) or {})


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | None = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the validated settings, or raise ``ConfigError`` naming the offending key (or variable)."""
    unknown = unknown_environment(Settings, os.environ)
    if unknown:
        raise ConfigError("\n".join(["invalid environment:", *(f"  {line}" for line in unknown)]))
    file_values = read_config_file(config_file) if config_file else {}
    profile_name = profile or os.environ.get("INFERLAB_PROFILE") or file_values.get("profile") or "laptop"
    layered = deep_merge(read_profile(str(profile_name)), file_values)
    layered["profile"] = profile_name

    class LayeredSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _MappingSource(settings_cls, layered))

    try:
        return LayeredSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


class _MappingSource(PydanticBaseSettingsSource):
    """The profile and config file, already merged, as the lowest-precedence settings source."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        hint = unknown_setting_hint(Settings, error["loc"]) if error["type"] == "extra_forbidden" else ""
        lines.append(f"  {where}: {error['msg']}{hint}")
    return "\n".join(lines)
