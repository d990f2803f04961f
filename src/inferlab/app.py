"""The composition root: settings in, a wired aiohttp application out.

Every component is built here from the typed settings and handed its collaborators; nothing
reaches for a global. Tests build the app with the settings (and parts) they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from inferlab.api.drain import DrainController
from inferlab.api.middleware import build_middleware
from inferlab.api.openai_routes import FimPolicy, OpenAIRoutes
from inferlab.api.ops_routes import OpsRoutes
from inferlab.api.validation import RequestValidator
from inferlab.backends.llamacpp import ManagedLlamaCppBackend
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.code.fim import fim_template
from inferlab.config import ModelConfig, Settings
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.coordinator.locate import llama_engine_command
from inferlab.metrics import GatewayMetrics
from inferlab.router import BackendPool, ModelRouter
from inferlab.types import InferenceBackend


@dataclass
class Gateway:
    """What the server runner and tests need to reach after the app is built."""

    settings: Settings
    drain: DrainController
    router: ModelRouter
    metrics: GatewayMetrics | None
    engines: list[ManagedEngine] = field(default_factory=list)

    def engine_states(self) -> dict[str, str]:
        return {engine.name: engine.state.value for engine in self.engines}


GATEWAY = web.AppKey("gateway", Gateway)


class _NullObserver:
    def engine_up_changed(self, engine: str, up: bool) -> None:
        pass

    def engine_restarted(self, engine: str) -> None:
        pass


def _http_session(settings: Settings) -> aiohttp.ClientSession:
    upstream = settings.upstream
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=upstream.max_connections, limit_per_host=0, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=upstream.connect_timeout_s, sock_read=upstream.read_timeout_s
        ),
        auto_decompress=True,
    )


class _EngineFactory:
    """Builds the managed llama.cpp engines of the configured models, and remembers them."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, metrics: GatewayMetrics | None,
                 logger: logging.Logger) -> None:
        self._settings = settings
        self._session = session
        self._observer = metrics or _NullObserver()
        self._logger = logger.getChild("engine")
        self.engines: list[ManagedEngine] = []

    def backend(self, name: str, model: ModelConfig, *, embedding: bool = False) -> InferenceBackend:
        engines = self._settings.engines
        engine = ManagedEngine(
            name,
            lambda port: llama_engine_command(model, engines, port, embedding=embedding),
            self._session,
            observer=self._observer,
            logger=self._logger,
            startup_timeout_s=engines.startup_timeout_s,
            backoff_initial_s=engines.restart_backoff_initial_s,
            backoff_max_s=engines.restart_backoff_max_s,
        )
        self.engines.append(engine)
        return ManagedLlamaCppBackend(engine, self._session)


def _pools(
    model: ModelConfig, session: aiohttp.ClientSession, factory: _EngineFactory
) -> tuple[BackendPool, BackendPool | None]:
    """The model's pool, and its embeddings pool when embeddings need engines of their own."""
    api_key = model.api_key.get_secret_value() if model.api_key else None
    replicas: list[InferenceBackend]
    if model.backend == "openai":
        assert model.url is not None
        replicas = [OpenAICompatibleBackend(model.name, model.url, session, served_name=model.served_name, api_key=api_key)]
    elif model.backend == "ollama":
        assert model.url is not None
        replicas = [OllamaBackend(model.name, model.url, session, served_name=model.served_name or model.name)]
    elif model.url:  # a llama-server someone else runs
        base = model.url.rstrip("/").removesuffix("/v1")
        replicas = [OpenAICompatibleBackend(model.name, base + "/v1", session, api_key=api_key, health_url=base + "/health")]
    else:
        count = model.replicas
        replicas = [factory.backend(model.name if count == 1 else f"{model.name}-{i}", model) for i in range(count)]
        if model.embeddings:
            embedder = factory.backend(f"{model.name}-embed", model, embedding=True)
            return BackendPool(model.name, replicas), BackendPool(model.name, [embedder])
    return BackendPool(model.name, replicas), None


async def create_app(settings: Settings, *, logger: logging.Logger | None = None) -> web.Application:
    """Build the gateway. Call inside the event loop; engines start with the app, stop with it."""
    logger = logger or logging.getLogger("inferlab")
    metrics = GatewayMetrics() if settings.features.metrics else None
    session = _http_session(settings)
    factory = _EngineFactory(settings, session, metrics, logger)
    try:
        built = [_pools(model, session, factory) for model in settings.models]
    except BaseException:
        await session.close()
        raise
    engines = factory.engines
    router = ModelRouter([pool for pool, _ in built], [pool for _, pool in built if pool is not None])
    drain = DrainController()
    gateway = Gateway(settings, drain, router, metrics, engines)

    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[build_middleware(metrics, logger)],
        handler_args={"max_field_size": 16384},
    )
    app[GATEWAY] = gateway
    validator = RequestValidator(settings.server.max_tokens_limit, settings.server.max_n)
    fim = {
        model.name: FimPolicy(
            template=fim_template(model.fim_template) if model.fim_template else None,
            engine_handles_suffix=model.backend != "llamacpp",  # llama-server ignores suffix on /v1/completions
        )
        for model in settings.models
    }
    OpenAIRoutes(router, validator, drain, metrics, logger, settings.server.max_body_bytes, fim).add_to(app)
    OpsRoutes(router, drain, metrics, gateway.engine_states).add_to(app)
    if settings.features.planning_api:
        _add_planning(app)

    async def start_engines(_: web.Application) -> None:
        for engine in engines:
            engine.start()

    async def stop_everything(_: web.Application) -> None:
        for engine in engines:
            await engine.stop()
        await session.close()

    app.on_startup.append(start_engines)
    app.on_cleanup.append(stop_everything)
    return app


def _add_planning(app: web.Application) -> None:
    from inferlab.planning.catalogue import load_catalogue
    from inferlab.planning.routes import add_planning_routes

    add_planning_routes(app, load_catalogue())
