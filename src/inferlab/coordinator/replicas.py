"""The replicas of every configured model: engines InferLab runs itself (managed llama.cpp
processes) and engines someone else runs (any OpenAI-compatible server, Ollama), as pools.

Built by the composition root; the managed engines it creates are remembered so their lifecycle
(start with the gateway, stop with it) is owned by one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.engine_group import EngineGroupBackend
from inferlab.backends.jetstream import JetStreamBackend
from inferlab.backends.llamacpp import ManagedLlamaCppBackend
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.config import EngineSettings, ModelConfig
from inferlab.coordinator.attached import AttachedEngine, EngineHandoff
from inferlab.coordinator.distributed import DistributedCoordinator
from inferlab.coordinator.engine_process import EngineObserver, ManagedEngine
from inferlab.coordinator.from_config import deployment_from_model, model_group_plan
from inferlab.coordinator.group import EngineGroup, GroupObserver, GroupTiming, NullGroupObserver
from inferlab.coordinator.local import LocalProvider
from inferlab.coordinator.locate import find_rpc_programs, llama_engine_command
from inferlab.coordinator.provider import EngineProvider
from inferlab.router import BackendPool, PoolObserver, Replica, ReplicaEndpoint
from inferlab.router.build import build_pool, replica_limit
from inferlab.router.load import EngineKind
from inferlab.types import InferenceBackend


class NullEngineObserver:
    def engine_up_changed(self, engine: str, up: bool) -> None:
        pass

    def engine_restarted(self, engine: str) -> None:
        pass


class EngineObservers(EngineObserver, GroupObserver, Protocol):
    """What watches managed engines and engine groups (``GatewayMetrics``)."""


@dataclass
class ModelPools:
    """One model's pool, and its embeddings pool when embeddings run on engines of their own."""

    model: ModelConfig
    pool: BackendPool
    embeddings: BackendPool | None = None

    def pools(self) -> list[BackendPool]:
        return [self.pool] if self.embeddings is None else [self.pool, self.embeddings]


@dataclass
class Replicas:
    """What ``build_replicas`` made: every model's pools and every managed engine."""

    models: list[ModelPools]
    engines: list[ManagedEngine] = field(default_factory=list)
    coordinator: DistributedCoordinator | None = None  # the engine groups, when a model has `distributed:`
    new_engine: NewEngine | None = None  # more managed engines of a model, on demand (the autoscaler)


class NewEngine(Protocol):
    def __call__(self, name: str, model: ModelConfig) -> tuple[ManagedEngine, InferenceBackend, ReplicaEndpoint]:
        """A managed engine (not started) for one more replica of ``model``, its backend and endpoint."""
        ...


class _ManagedEngines:
    """Builds the managed llama.cpp engines of the configured models, and remembers them."""

    def __init__(self, settings: EngineSettings, session: aiohttp.ClientSession, client: EngineClient,
                 observer: EngineObserver,
                 logger: logging.Logger, max_line_bytes: int,
                 attached: Mapping[str, EngineHandoff] | None = None) -> None:
        self._settings = settings
        self._attached = attached
        self._session = session
        self._client = client
        self._observer = observer
        self._logger = logger
        self._max_line_bytes = max_line_bytes
        self.engines: list[ManagedEngine] = []

    def replica(self, name: str, model: ModelConfig, *, embedding: bool = False
                ) -> tuple[InferenceBackend, ReplicaEndpoint]:
        engine, backend, endpoint = self.build(name, model, embedding=embedding)
        self.engines.append(engine)
        return backend, endpoint

    def build(self, name: str, model: ModelConfig, *, embedding: bool = False
              ) -> tuple[ManagedEngine, InferenceBackend, ReplicaEndpoint]:
        """One managed engine, remembered by nobody (``replica`` remembers the configured ones)."""
        settings = self._settings
        engine = self._attach(name) if self._attached is not None else ManagedEngine(
            name,
            lambda port: llama_engine_command(model, settings, port, embedding=embedding),
            self._session,
            observer=self._observer,
            logger=self._logger,
            startup_timeout_s=settings.startup_timeout_s,
            backoff_initial_s=settings.restart_backoff_initial_s,
            backoff_max_s=settings.restart_backoff_max_s,
        )
        backend = ManagedLlamaCppBackend(engine, self._client, self._max_line_bytes)
        kind: EngineKind = "llamacpp" if engine.command.flavour == "llama-server" else "generic"
        return engine, backend, ReplicaEndpoint(engine.url, kind, engine.command.api_key)

    def _attach(self, name: str) -> ManagedEngine:
        assert self._attached is not None
        handoff = self._attached.get(name)
        if handoff is None:  # the supervisor and its workers build from the same settings: a bug
            raise RuntimeError(f"the supervisor handed over no engine named {name!r}")
        return AttachedEngine(handoff, self._session, observer=self._observer, logger=self._logger,
                              interval_s=self._settings.health_interval_s)


def remote_replica(
    model: ModelConfig, name: str, url: str, session: aiohttp.ClientSession, max_line_bytes: int, *,
    client: EngineClient,
) -> tuple[InferenceBackend, ReplicaEndpoint]:
    """One engine someone else runs, with where its health and load endpoints are."""
    api_key = model.api_key.get_secret_value() if model.api_key else None
    root = url.rstrip("/").removesuffix("/v1")
    if model.backend == "ollama":
        ollama = OllamaBackend(
            name, url, session, served_name=model.served_name or model.name, max_line_bytes=max_line_bytes
        )
        return ollama, ReplicaEndpoint(root, "ollama")  # no load metrics: in-flight counts only
    if model.backend == "jetstream":
        jetstream = JetStreamBackend(name, url, session, chat_template=model.chat_template, max_line_bytes=max_line_bytes)
        return jetstream, ReplicaEndpoint(root, "jetstream")  # its metrics are on another port: in-flight counts
    engine: EngineKind = model.engine or ("llamacpp" if model.backend == "llamacpp" else "generic")
    health_url = root + "/health" if engine != "generic" else None  # generic: GET /v1/models
    backend = OpenAICompatibleBackend(
        name, root + "/v1", client, served_name=model.served_name, api_key=api_key, health_url=health_url,
        close_after_stream=engine == "llamacpp", max_line_bytes=max_line_bytes, send_priority=model.engine_priority,
    )
    return backend, ReplicaEndpoint(root, engine, api_key)


def _providers(settings: EngineSettings, logger: logging.Logger) -> dict[str, EngineProvider]:
    from inferlab.coordinator.ray_provider import RayProvider

    return {"local": LocalProvider(logger), "ray": RayProvider(settings.ray.address, settings.ray.namespace, logger,
                                                                    node_ip_address=settings.ray.node_ip_address)}


def _group_coordinator(models: Sequence[ModelConfig], engines: EngineSettings, session: aiohttp.ClientSession,
                       observer: GroupObserver, logger: logging.Logger) -> DistributedCoordinator | None:
    if not any(model.distributed for model in models):
        return None
    find_rpc_programs(engines)  # fail at build time, with how to get them, rather than in a restart loop
    timing = GroupTiming(startup_timeout_s=engines.startup_timeout_s, placement_timeout_s=engines.ray.placement_timeout_s,
                         backoff_initial_s=engines.restart_backoff_initial_s,
                         backoff_max_s=engines.restart_backoff_max_s, health_interval_s=engines.group_health_interval_s)
    return DistributedCoordinator(_providers(engines, logger), session, timing=timing, observer=observer, logger=logger)


def _group_replicas(model: ModelConfig, engines: EngineSettings, coordinator: DistributedCoordinator,
                    client: EngineClient, max_line_bytes: int) -> list[tuple[InferenceBackend, ReplicaEndpoint]]:
    assert model.distributed is not None
    spec = deployment_from_model(model, engines)
    groups = coordinator.deploy(spec, model.distributed.provider, lambda name: model_group_plan(spec, engines, name))
    return [(EngineGroupBackend(group, client, max_line_bytes=max_line_bytes),
             ReplicaEndpoint(None, "llamacpp", group.api_key)) for group in groups]


def _follow_groups(pool: BackendPool) -> None:
    """A group's transitions re-route the pool at once, and move its replica's endpoint with its leader."""
    for replica in pool.replicas:
        group = getattr(replica.backend, "engine", None)
        if isinstance(group, EngineGroup):
            def follow(changed: EngineGroup, replica: Replica = replica) -> None:
                if changed.is_ready():
                    replica.endpoint = ReplicaEndpoint(changed.url, "llamacpp", changed.api_key)
                pool.capacity_changed()

            group.subscribe(follow)


def _names(model: ModelConfig, count: int) -> list[str]:
    return [model.name] if count == 1 else [f"{model.name}-{i}" for i in range(count)]


def build_replicas(
    models: Sequence[ModelConfig], engines: EngineSettings, session: aiohttp.ClientSession, *, client: EngineClient,
    max_line_bytes: int, pool_observer: PoolObserver | None = None,
    engine_observer: EngineObservers | None = None, logger: logging.Logger,
    attached: Mapping[str, EngineHandoff] | None = None,
) -> Replicas:
    """``attached``: the managed engines run by another process (``serve --workers``' supervisor),
    by engine name; this process then follows them instead of starting its own."""
    managed = _ManagedEngines(engines, session, client, engine_observer or NullEngineObserver(),
                              logger.getChild("engine"), max_line_bytes, attached)
    coordinator = _group_coordinator(models, engines, session, engine_observer or NullGroupObserver(),
                                     logger.getChild("coordinator"))
    built: list[ModelPools] = []
    for model in models:
        if model.distributed is not None and coordinator is not None:
            groups = _group_replicas(model, engines, coordinator, client, max_line_bytes)
            pool = build_pool(model, groups, limit=replica_limit(model, True), observer=pool_observer)
            _follow_groups(pool)
            built.append(ModelPools(model, pool))
            continue
        if model.backend != "llamacpp" or model.url or model.urls:
            urls = model.urls or [model.url or ""]
            remote = [remote_replica(model, name, url, session, max_line_bytes, client=client)
                      for name, url in zip(_names(model, len(urls)), urls, strict=True)]
            built.append(ModelPools(model, build_pool(model, remote, limit=replica_limit(model, False),
                                                      observer=pool_observer)))
            continue
        limit = replica_limit(model, True)
        local = [managed.replica(name, model) for name in _names(model, model.replicas)]
        pool = build_pool(model, local, limit=limit, observer=pool_observer)
        embeddings = None
        if model.embeddings:
            embedder = managed.replica(f"{model.name}-embed", model, embedding=True)
            embeddings = build_pool(model, [embedder], limit=limit, observer=pool_observer)
        built.append(ModelPools(model, pool, embeddings))
    return Replicas(built, managed.engines, coordinator, new_engine=managed.build if attached is None else None)
