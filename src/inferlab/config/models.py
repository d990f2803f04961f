"""``models:``: each model served, where its engines are, and how its requests are routed, queued,
health-checked and retried."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from inferlab.config.base import HTTP, StrictModel, check_http_url, check_url

EMBEDDED_MODEL = "embedded:smollm2"

# The names of the templates in ``inferlab.code.fim.FIM_TEMPLATES``, spelled out so that the settings
# import no feature code; tests/unit/config/test_fim_template_names.py keeps the two lists equal.
FIM_TEMPLATE_NAMES = frozenset({
    "qwen2.5-coder", "starcoder", "starcoder2", "codellama", "deepseek-coder", "deepseek-coder-v2", "codestral",
    "codegemma", "granite-code",
})
# ``fim_template: gguf``: the sentinels the model's own GGUF declares (a llamacpp model with a path).
# A llamacpp model's GGUF is read whatever is configured, and its FIM tokens win when it has them.
GGUF_FIM_TEMPLATE = "gguf"


class PrefixRoutingSettings(StrictModel):
    """prefix_aware routing: block size, index bound, and how the match is weighed against load."""

    block_chars: int = Field(256, ge=16, description="characters per hashed prompt block")
    max_blocks: int = Field(64, ge=1, description="prompt blocks considered per request")
    capacity_blocks: int = Field(16384, ge=1, description="LRU bound of the index, per replica")
    prefix_weight: float = Field(1.0, ge=0)
    queue_weight: float = Field(0.5, ge=0)
    kv_weight: float = Field(0.3, ge=0)
    balance_abs_threshold: float = Field(4.0, ge=0, description="imbalance: max - min load above this...")
    balance_rel_threshold: float = Field(1.5, ge=1, description="...and max above this x min: least-loaded")


class RoutingSettings(StrictModel):
    strategy: Literal[
        "round_robin", "least_outstanding", "power_of_two", "latency_ewma", "session_affinity", "prefix_aware"
    ] = "least_outstanding"
    session_header: str = Field("x-session-id", description="session_affinity: conversation header (else `user`)")
    prefix: PrefixRoutingSettings = Field(default_factory=PrefixRoutingSettings)


SchedulingPolicyName = Literal["tiered", "fifo", "priority", "vtc"]
PriorityClassName = Literal["low", "normal", "high", "critical"]


class ClassQueueSettings(StrictModel):
    """One priority class's part of a pool's queue."""

    max_depth: int | None = Field(None, ge=0, description="waiters of this class at most; beyond: 503")
    headroom: int = Field(0, ge=0, description="slots a request of this class leaves free for higher classes "
                                               "(it waits while no more are free), so they rarely wait for one")


class QueueSettings(StrictModel):
    max_depth: int = Field(256, ge=0, description="requests waiting for a replica slot; beyond: 503")
    max_wait_s: float = Field(30.0, gt=0, description="longest wait for a slot; then 503 + Retry-After")
    policy: SchedulingPolicyName = Field(
        "tiered", description="tiered: priority classes, then weighted fair queuing across tenants, then "
                              "earliest deadline; fifo; priority (classes, then arrival); vtc (fair across tenants)")
    aging_s: float | None = Field(
        None, gt=0, description="tiered/priority: a waiter older than this goes before every younger one, "
                                "whatever its class, so no class starves; null: a third of max_wait_s")
    aging_share: float = Field(0.03, gt=0, le=1, description="aged waiters jump at most this share of the "
                                                          "dispatches (sustained low-class overload stays below)")
    sheddable: list[PriorityClassName] = Field(
        default_factory=lambda: list[PriorityClassName](["low"]),
        description="classes whose waiters are turned away (503) to make room for a higher class's request")
    classes: dict[PriorityClassName, ClassQueueSettings] = Field(default_factory=dict,
                                                                 description="per class: its depth limit")

    @model_validator(mode="after")
    def _aging_within_wait(self) -> QueueSettings:
        if self.aging_s is not None and self.aging_s >= self.max_wait_s:
            raise ValueError("aging_s must be shorter than max_wait_s (a waiter would time out before it ages)")
        return self

    @property
    def aging_bound_s(self) -> float:
        return self.aging_s if self.aging_s is not None else self.max_wait_s / 3


class HealthSettings(StrictModel):
    probe_interval_s: float = Field(5.0, gt=0)
    probe_timeout_s: float = Field(2.0, gt=0)
    unhealthy_threshold: int = Field(2, ge=1, description="failed probes before a replica is ejected")
    failure_threshold: int = Field(3, ge=1, description="consecutive failed requests that open the breaker")
    ejection_base_s: float = Field(1.0, gt=0, description="first ejection; doubles each time, up to max")
    ejection_max_s: float = Field(30.0, gt=0)
    scrape_interval_s: float = Field(1.0, gt=0, description="engine /metrics (and llama.cpp /slots)")


class RetrySettings(StrictModel):
    max_attempts: int = Field(3, ge=1, description="per request, first attempt included")
    budget_ratio: float = Field(0.2, ge=0, description="retries allowed per request, on average")
    budget_min_per_s: float = Field(5.0, ge=0, description="retries always allowed per second")
    attempt_timeout_s: float | None = Field(None, gt=0, description="non-streamed attempt; None: derived (below)")
    first_byte_timeout_s: float | None = Field(None, gt=0, description="streamed attempt, until its first chunk")
    stream_idle_timeout_s: float | None = Field(None, gt=0, description="stream, between chunks; None: first byte's")
    timeout_floor_s: float = Field(20.0, gt=0, description="derived timeouts: the fixed part of the first byte's")
    prefill_tokens_per_s: float = Field(100.0, gt=0, description="derived timeouts: slowest expected prefill")
    decode_tokens_per_s: float = Field(5.0, gt=0, description="derived timeouts: slowest expected generation")


class DistributedSettings(StrictModel):
    """llamacpp: run the model as a group of processes (a leader and ``rpc_workers`` llama.cpp RPC
    workers that hold its layers), placed by a provider: here (``local``) or on a Ray cluster."""

    provider: Literal["local", "ray"] = "local"
    rpc_workers: int = Field(1, ge=0, le=64, description="rpc-server processes beside the leader")
    placement: Literal["pack", "spread", "strict_spread"] = Field(
        "spread", description="ray: ranks over as many nodes as have room (spread), one node (pack), one each")
    cpus_per_rank: float = Field(1.0, gt=0, description="ray: CPUs reserved per rank")
    threads: int | None = Field(None, ge=1, description="threads per rank (default: engines.threads)")


class ModelConfig(StrictModel):
    name: str = Field(min_length=1, max_length=256)
    backend: Literal["llamacpp", "openai", "ollama", "jetstream"]
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
    chat_template: Literal["llama3", "gemma", "chatml", "plain"] = Field(
        "plain", description="jetstream: how chat messages become its one text prompt (JetStream takes text only)")
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
    engine_priority: bool = Field(
        False, description="send the request's priority class in the body's `priority` field (vLLM run with "
                           "--scheduling-policy priority; lower is earlier there): critical 0 … low 3")
    distributed: DistributedSettings | None = Field(None, description="llamacpp: one replica = a group of processes")
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    def cache_version(self) -> str:
        """Changes whenever what answers for this model changes: cached answers of the old one are unreachable."""
        if self.version:
            return self.version
        served = [self.backend, self.url, self.urls, self.path, self.served_name, self.engine_args, self.fim_template]
        return hashlib.sha256(repr(served).encode()).hexdigest()[:16]

    @field_validator("url")
    @classmethod
    def _engine_url(cls, url: str | None) -> str | None:
        return check_http_url(url)

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
        if name is not None and name not in FIM_TEMPLATE_NAMES and name != GGUF_FIM_TEMPLATE:
            choices = ", ".join(sorted(FIM_TEMPLATE_NAMES))
            raise ValueError(f"unknown FIM template {name!r}; choose one of {choices}")
        return name

    @model_validator(mode="after")
    def _backend_needs(self) -> ModelConfig:
        if self.url and self.urls:
            raise ValueError("give either 'url' or 'urls', not both")
        if self.backend in ("openai", "ollama", "jetstream") and not self.url and not self.urls:
            raise ValueError(f"backend {self.backend!r} needs 'url' (or 'urls')")
        if self.backend == "llamacpp" and not self.path and not self.url and not self.urls:
            raise ValueError("backend 'llamacpp' needs 'path' (a GGUF file or embedded:smollm2)")
        if self.engine_priority and self.backend != "openai":
            raise ValueError("engine_priority needs an OpenAI-compatible engine that schedules by priority "
                             "(backend 'openai', e.g. vLLM with --scheduling-policy priority)")
        if self.distributed is not None and (self.backend != "llamacpp" or self.url or self.urls):
            raise ValueError("'distributed' is for llamacpp models InferLab runs itself (path, no url)")
        return self
