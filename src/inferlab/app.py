"""The composition root: settings in, a wired aiohttp application out.

Every component is built here from the typed settings and handed its collaborators; nothing
reaches for a global. Tests build the app with the settings (and parts) they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from inferlab.api.backends_admin_routes import BackendsAdminRoutes
from inferlab.api.body import BODY_TIMING, BodyTiming
from inferlab.api.docs_routes import DocsRoutes
from inferlab.api.drain import DrainController
from inferlab.api.middleware import build_middleware
from inferlab.api.openai_routes import FimPolicy, Limits, OpenAIRoutes
from inferlab.api.ops_routes import OpsRoutes
from inferlab.api.readiness import DEPENDENCIES, Dependencies, DependencyCheck
from inferlab.api.routes import RouteSpec, access_rules
from inferlab.api.validation import RequestValidator
from inferlab.auth.middleware import build_auth_middleware
from inferlab.auth.policy import RoutePolicy
from inferlab.backends.llamacpp import ManagedLlamaCppBackend
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.code.fim import fim_template
from inferlab.config import ModelConfig, Settings
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.coordinator.locate import llama_engine_command
from inferlab.metrics import GatewayMetrics
from inferlab.router import (
    BackendPool,
    EngineKind,
    Failover,
    HealthMonitor,
    LoadScraper,
    ModelRouter,
    PoolObserver,
    ReplicaEndpoint,
)
from inferlab.router.build import build_pool, health_policy, replica_limit
from inferlab.scheduler.build import build_queues
from inferlab.types import InferenceBackend

if TYPE_CHECKING:
    from inferlab.auth.stack import AuthStack
    from inferlab.cache.responses import ResponseCache


@dataclass
class Gateway:
    """What the server runner and tests need to reach after the app is built."""

    settings: Settings
    drain: DrainController
    router: ModelRouter
    metrics: GatewayMetrics | None
    engines: list[ManagedEngine] = field(default_factory=list)
    auth: AuthStack | None = None  # features.auth: the store, key cache and identity admin
    limits: Limits | None = None  # features.ratelimit with limits or quotas configured
    routes: tuple[RouteSpec, ...] = ()  # every declared route: its rule, its documentation

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
        return ManagedLlamaCppBackend(engine, self._session, self._settings.upstream.max_stream_line_bytes)


def _remote_replica(
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
    engine = model.engine or ("llamacpp" if model.backend == "llamacpp" else "generic")
    health_url = root + "/health" if engine != "generic" else None  # generic: GET /v1/models
    backend = OpenAICompatibleBackend(
        name, root + "/v1", session, served_name=model.served_name, api_key=api_key, health_url=health_url,
        close_after_stream=engine == "llamacpp", max_line_bytes=max_line_bytes,
    )
    return backend, ReplicaEndpoint(root, engine, api_key)


def _managed_replica(backend: InferenceBackend) -> tuple[InferenceBackend, ReplicaEndpoint]:
    engine = backend.engine  # type: ignore[attr-defined]
    kind: EngineKind = "llamacpp" if engine.command.flavour == "llama-server" else "generic"
    return backend, ReplicaEndpoint(engine.url, kind, engine.command.api_key)


def _pools(
    model: ModelConfig, session: aiohttp.ClientSession, factory: _EngineFactory,
    observer: PoolObserver | None, max_line_bytes: int,
) -> tuple[BackendPool, BackendPool | None]:
    """The model's pool, and its embeddings pool when embeddings need engines of their own."""
    if model.backend != "llamacpp" or model.url or model.urls:
        urls = model.urls or [model.url or ""]
        names = [model.name] if len(urls) == 1 else [f"{model.name}-{i}" for i in range(len(urls))]
        remote = [
            _remote_replica(model, name, url, session, max_line_bytes) for name, url in zip(names, urls)
        ]
        return build_pool(model, remote, limit=replica_limit(model, False), observer=observer), None
    count = model.replicas
    names = [model.name] if count == 1 else [f"{model.name}-{i}" for i in range(count)]
    managed = [_managed_replica(factory.backend(name, model)) for name in names]
    pool = build_pool(model, managed, limit=replica_limit(model, True), observer=observer)
    if not model.embeddings:
        return pool, None
    embedder = _managed_replica(factory.backend(f"{model.name}-embed", model, embedding=True))
    return pool, build_pool(model, [embedder], limit=replica_limit(model, True), observer=observer)


async def create_app(settings: Settings, *, logger: logging.Logger | None = None) -> web.Application:
    """Build the gateway. Call inside the event loop; engines start with the app, stop with it."""
    logger = logger or logging.getLogger("inferlab")
    metrics = GatewayMetrics() if settings.features.metrics else None
    auth = _build_auth(settings) if settings.features.auth else None
    session = _http_session(settings)
    factory = _EngineFactory(settings, session, metrics, logger)
    try:
        line_limit = settings.upstream.max_stream_line_bytes
        built = [_pools(model, session, factory, metrics, line_limit) for model in settings.models]
    except BaseException:
        await session.close()
        raise
    engines = factory.engines
    router = ModelRouter([pool for pool, _ in built], [pool for _, pool in built if pool is not None])
    queues = build_queues(settings.models, metrics)
    policies = {
        id(pool): health_policy(model) for model, pair in zip(settings.models, built) for pool in pair if pool
    }
    all_pools = [pool for pair in built for pool in pair if pool is not None]
    health = HealthMonitor(all_pools, policies, logger.getChild("router"))
    scraper = LoadScraper(
        all_pools, session, interval_s=min((m.health.scrape_interval_s for m in settings.models), default=1.0)
    )
    drain = DrainController()
    gateway = Gateway(settings, drain, router, metrics, engines)

    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[build_middleware(metrics, logger)],  # + the auth middleware, once the routes are declared
        handler_args={"max_field_size": 16384, "auto_decompress": False},  # api/body.py inflates, capped
    )
    app[GATEWAY] = gateway
    dependencies = app[DEPENDENCIES] = Dependencies()  # what /ready checks besides the engines
    app[BODY_TIMING] = BodyTiming.of(settings.server)
    declared: list[RouteSpec] = []  # each route family declares its routes with their access rules
    if auth is not None:  # opens the store (migrate, bootstrap key) before anything else starts
        gateway.auth = auth
        app.cleanup_ctx.append(auth.lifespan)
        declared += _add_admin(app, auth, settings)
        # every authenticated request needs the store; the ping is bounded by the store's own guard
        dependencies.add(DependencyCheck("database", auth.database.ping, critical=True,
                                         timeout_s=settings.auth.store_timeout_s + 0.5))
    validator = RequestValidator(settings.server.max_tokens_limit, settings.server.max_n)
    fim = {
        model.name: FimPolicy(
            template=fim_template(model.fim_template) if model.fim_template else None,
            engine_handles_suffix=model.backend != "llamacpp",  # llama-server ignores suffix on /v1/completions
        )
        for model in settings.models
    }
    limits = _build_limits(app, settings, metrics, logger, auth) if settings.features.ratelimit else None
    gateway.limits = limits
    cache = _build_cache(app, settings, metrics, logger, auth is not None) if settings.features.cache else None
    declared += OpenAIRoutes(
        router, validator, drain, metrics, logger, settings.server.max_body_bytes, fim, limits, cache,
        failover=Failover(queues),
    ).add_to(app)
    protect_metrics = auth is not None and settings.auth.protect_metrics
    declared += OpsRoutes(router, drain, metrics, gateway.engine_states, dependencies).add_to(
        app, protect_metrics=protect_metrics)
    declared += BackendsAdminRoutes(router, queues).add_to(app)
    if settings.features.planning_api:
        declared += _add_planning(app)
    declared += DocsRoutes(declared, public=settings.server.docs).add_to(app)
    gateway.routes = tuple(declared)
    if auth is not None:  # the policy is the union of the declared rules; an undeclared route has none (403)
        policy = RoutePolicy(access_rules(declared))
        app.middlewares.append(build_auth_middleware(auth.service, policy))

    async def start_engines(_: web.Application) -> None:
        for engine in engines:
            engine.start()
        health.start()
        scraper.start()

    async def stop_everything(_: web.Application) -> None:
        await health.stop()
        await scraper.stop()
        for engine in engines:
            await engine.stop()
        await session.close()

    app.on_startup.append(start_engines)
    app.on_cleanup.append(stop_everything)
    return app


def _build_limits(
    app: web.Application, settings: Settings, metrics: GatewayMetrics | None, logger: logging.Logger,
    auth: AuthStack | None,
) -> Limits | None:
    """features.ratelimit: the limiter (Redis when configured, else memory), its policy and identity."""
    from inferlab.ratelimit.build import build_limits  # redis is imported only when redis_url is set

    overrides = auth.limit_overrides if auth is not None else None
    return build_limits(app, settings, metrics, logger.getChild("ratelimit"), auth is not None, overrides)


def _build_cache(
    app: web.Application, settings: Settings, metrics: GatewayMetrics | None, logger: logging.Logger,
    authenticated: bool,
) -> ResponseCache:
    from inferlab.cache.build import build_cache  # redis is imported only when redis_url is set

    return build_cache(app, settings, metrics, logger.getChild("cache"), authenticated)


def _build_auth(settings: Settings) -> AuthStack:
    from inferlab.auth.stack import build_auth  # SQLAlchemy and Alembic only when auth is on

    return build_auth(settings)


def _add_admin(app: web.Application, auth: AuthStack, settings: Settings) -> list[RouteSpec]:
    from inferlab.api.admin_routes import AdminRoutes
    from inferlab.api.audit_routes import AuditRoutes
    from inferlab.api.limits_routes import LimitRoutes
    from inferlab.ratelimit.grants import LimitAdmin, configured_defaults
    from inferlab.ratelimit.overrides import OverrideCache
    from inferlab.store.limits import SqlLimitStore

    declared = AdminRoutes(auth.admin, settings.server.max_body_bytes).add_to(app)
    store = SqlLimitStore(auth.database)
    from sqlalchemy.exc import SQLAlchemyError

    from inferlab.errors import StoreUnavailable

    auth.limit_overrides = OverrideCache(store, settings.auth.key_cache_ttl_s,
                                         errors=(SQLAlchemyError, OSError, StoreUnavailable))
    defaults = configured_defaults(settings.ratelimit.limits, settings.quota.limits)
    limit_admin = LimitAdmin(auth.admin, store, auth.limit_overrides, defaults=defaults, audit=auth.audit)
    declared += LimitRoutes(limit_admin, settings.server.max_body_bytes).add_to(app)
    return declared + AuditRoutes(auth.audit).add_to(app)


def _add_planning(app: web.Application) -> list[RouteSpec]:
    from inferlab.planning.catalogue import load_catalogue
    from inferlab.planning.routes import add_planning_routes

    return add_planning_routes(app, load_catalogue())
