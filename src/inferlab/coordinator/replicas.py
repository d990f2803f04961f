"""The replicas of every configured model: engines InferLab runs itself (managed llama.cpp
processes) and engines someone else runs (any OpenAI-compatible server, Ollama), as pools.

Built by the composition root; the managed engines it creates are remembered so their lifecycle
(start with the gateway, stop with it) is owned by one place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from inferlab.backends.llamacpp import ManagedLlamaCppBackend
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.config import EngineSettings, ModelConfig
from inferlab.coordinator.engine_process import EngineObserver, ManagedEngine
from inferlab.coordinator.locate import llama_engine_command
from inferlab.router import BackendPool, PoolObserver, ReplicaEndpoint
from inferlab.router.build import build_pool, replica_limit
from inferlab.router.load import EngineKind
from inferlab.types import InferenceBackend


class NullEngineObserver:
    def engine_up_changed(self, engine: str, up: bool) -> None:
        pass

    def engine_restarted(self, engine: str) -> None:
        pass


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


class _ManagedEngines:
    """Builds the managed llama.cpp engines of the configured models, and remembers them."""

    def __init__(self, settings: EngineSettings, session: aiohttp.ClientSession, observer: EngineObserver,
                 logger: logging.Logger, max_line_bytes: int) -> None:
        self._settings = settings
        self._session = session
        self._observer = observer
        self._logger = logger
        self._max_line_bytes = max_line_bytes
        self.engines: list[ManagedEngine] = []

    def replica(self, name: str, model: ModelConfig, *, embedding: bool = False
                ) -> tuple[InferenceBackend, ReplicaEndpoint]:
        settings = self._settings
        engine = ManagedEngine(
            name,
            lambda port: llama_engine_command(model, settings, port, embedding=embedding),
            self._session,
            observer=self._observer,
            logger=self._logger,
            startup_timeout_s=settings.startup_timeout_s,
            backoff_initial_s=settings.restart_backoff_initial_s,
            backoff_max_s=settings.restart_backoff_max_s,
        )
        self.engines.append(engine)
        backend = ManagedLlamaCppBackend(engine, self._session, self._max_line_bytes)
        kind: EngineKind = "llamacpp" if engine.command.flavour == "llama-server" else "generic"
        return backend, ReplicaEndpoint(engine.url, kind, engine.command.api_key)


def remote_replica(
    model: ModelConfig, name: str, url: str, session: aiohttp.ClientSession, max_line_bytes: int
) -> tuple[InferenceBackend, ReplicaEndpoint]:
    """One engine someone else runs, with where its health and load endpoints are."""
    api_key = model.api_key.get_secret_value() if model.api_key else None
    root = url.rstrip("/").removesuffix("/v1")
    if model.backend == "ollama":
        ollama = OllamaBackend(
            name, url, session, served_name=model.served_name or model.name, max_line_bytes=max_line_bytes
        )
        return ollama, ReplicaEndpoint(root, "ollama")  # no load metrics: in-flight counts only
    engine: EngineKind = model.engine or ("llamacpp" if model.backend == "llamacpp" else "generic")
    health_url = root + "/health" if engine != "generic" else None  # generic: GET /v1/models
    backend = OpenAICompatibleBackend(
        name, root + "/v1", session, served_name=model.served_name, api_key=api_key, health_url=health_url,
        close_after_stream=engine == "llamacpp", max_line_bytes=max_line_bytes, send_priority=model.engine_priority,
    )
    return backend, ReplicaEndpoint(root, engine, api_key)


def _names(model: ModelConfig, count: int) -> list[str]:
    return [model.name] if count == 1 else [f"{model.name}-{i}" for i in range(count)]


def build_replicas(
    models: Sequence[ModelConfig], engines: EngineSettings, session: aiohttp.ClientSession, *,
    max_line_bytes: int, pool_observer: PoolObserver | None = None,
    engine_observer: EngineObserver | None = None, logger: logging.Logger,
) -> Replicas:
    managed = _ManagedEngines(engines, session, engine_observer or NullEngineObserver(),
                              logger.getChild("engine"), max_line_bytes)
    built: list[ModelPools] = []
    for model in models:
        if model.backend != "llamacpp" or model.url or model.urls:
            urls = model.urls or [model.url or ""]
            remote = [remote_replica(model, name, url, session, max_line_bytes)
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
    return Replicas(built, managed.engines)
