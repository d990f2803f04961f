"""The one way to wire InferLab: ``build_services(settings)`` builds every component from its own
settings section, hands each its collaborators, and assembles the request chain from the feature
flags. ``create_app`` (app.py) puts HTTP routes in front of it; CLI commands use
``build_admin_services`` (the store, the identity and limit admins) from the same builders.

Nothing is assigned after construction: a component is built once its collaborators exist.
What must start and stop with the gateway is registered on one ``Lifecycle``, in order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.token_service import TokenService
from inferlab.code.build import CodeLab, build_codelab, fim_policy
from inferlab.code.step import FillInTheMiddle
from inferlab.config import ModelConfig, Settings, UpstreamSettings
from inferlab.coordinator.attached import EngineHandoff
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.coordinator.replicas import Replicas, build_replicas
from inferlab.dependencies import Dependencies, DependencyCheck
from inferlab.drain import DrainController
from inferlab.lifecycle import Lifecycle
from inferlab.metrics import GatewayMetrics
from inferlab.metrics.step import CountRefusals, CountRequests
from inferlab.pipeline import Chain, Step, only_for, routes
from inferlab.resources.step import AllocateResources
from inferlab.router import Failover, HealthMonitor, LoadScraper, ModelRouter
from inferlab.router.build import health_policy
from inferlab.router.step import ResolveModel, RouteToReplica
from inferlab.scheduler.build import build_queues
from inferlab.scheduler.build import uses_redis as scheduler_uses_redis
from inferlab.scheduler.queue import WaitQueues
from inferlab.slo.step import TrackSlo
from inferlab.slo.tracker import SloTracker
from inferlab.tenants.directory import TenantDirectory, TenantReader, TierReader
from inferlab.tenants.manager import TenantManager
from inferlab.tenants.step import EnforceTier
from inferlab.tenants.tier import TierCatalogue

if TYPE_CHECKING:
    from inferlab.anomaly.service import AnomalyDetector
    from inferlab.auth.stack import AuthStack
    from inferlab.autoscale.service import Autoscaler
    from inferlab.batches.service import BatchService
    from inferlab.billing.build import BillingServices
    from inferlab.browser.build import Browser
    from inferlab.cache.step import CacheResponses
    from inferlab.idempotency.service import Idempotency
    from inferlab.metering.build import Metering
    from inferlab.metering.cost import CostTracker
    from inferlab.metering.usage_build import UsageServices
    from inferlab.ratelimit.grants import LimitAdmin
    from inferlab.ratelimit.overrides import OverrideCache
    from inferlab.ratelimit.step import RateLimits
    from inferlab.registry.build import Registry
    from inferlab.registry.service import RegistryService
    from inferlab.resources.service import ResourceService
    from inferlab.responses.service import Responses


@dataclass
class AdminServices:
    """features.auth: the identity store and service, and the stored per-subject limits."""

    auth: AuthStack
    limit_overrides: OverrideCache
    limit_admin: LimitAdmin
    tenants: TenantDirectory
    tenant_admin: TenantManager


@dataclass
class Services:
    """Every component of a running gateway; what the server, the routes and tests reach."""

    settings: Settings
    drain: DrainController
    metrics: GatewayMetrics | None
    router: ModelRouter
    queues: WaitQueues
    replicas: Replicas
    dependencies: Dependencies
    admin: AdminServices | None
    limits: RateLimits | None
    cache: CacheResponses | None
    tenants: TenantDirectory
    resources: ResourceService | None
    slo: SloTracker | None
    metering: Metering | None
    usage: UsageServices | None
    code: CodeLab | None
    browser: Browser | None
    responses: Responses | None
    tokens: TokenService
    batches: BatchService | None
    chain: Chain
    lifecycle: Lifecycle
    billing: BillingServices | None = None
    registry: RegistryService | None = None
    anomaly: AnomalyDetector | None = None
    autoscaler: Autoscaler | None = None
    idempotency: Idempotency | None = None

    @property
    def auth(self) -> AuthStack | None:
        return self.admin.auth if self.admin is not None else None

    @property
    def engines(self) -> list[ManagedEngine]:
        """The configured models' managed engines, and the served registry versions'."""
        return self.replicas.engines + (self.registry.served.engines() if self.registry is not None else [])

    def engine_states(self) -> dict[str, str]:
        states = {engine.name: engine.state.value for engine in self.engines}
        if self.replicas.coordinator is not None:
            states |= {group.name: group.state.value for group in self.replicas.coordinator.groups}
        return states

    def engines_report(self) -> dict[str, Any]:
        """Engine groups (ranks, placement, restarts) and single managed engines as groups of one."""
        coordinator = self.replicas.coordinator
        report = coordinator.snapshot() if coordinator is not None else {"object": "list", "providers": []}
        singles: list[dict[str, Any]] = [
            {"name": e.name, "engine": e.command.flavour, "provider": "local", "state": e.state.value,
                    "url": e.url, "restarts": e.restarts, "last_error": e.last_error or None, "nodes": ["local"],
                    "ranks": [{"index": 0, "role": "leader", "node": "local", "host": "127.0.0.1", "port": e.port,
                               "pid": e.pid}], "events": []} for e in self.engines]
        return {**report, "data": [*report.get("data", []), *singles]}

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Start everything in order (the store first, the engines last); stop in reverse."""
        return self.lifecycle.running()


def http_session(upstream: UpstreamSettings) -> aiohttp.ClientSession:
    """The one pooled client session to every engine (call inside the event loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=upstream.max_connections, limit_per_host=0, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=upstream.connect_timeout_s, sock_read=upstream.read_timeout_s
        ),
        auto_decompress=True,
    )


def engine_client(upstream: UpstreamSettings) -> EngineClient:
    """The pooled client every inference request to an OpenAI-compatible engine goes through."""
    return EngineClient(max_connections=upstream.max_connections, connect_timeout_s=upstream.connect_timeout_s,
                        read_timeout_s=upstream.read_timeout_s)


def build_admin_services(settings: Settings) -> AdminServices:
    """The store, identity admin, limit admin and tenant admin (``features.auth``); no I/O until started."""
    from sqlalchemy.exc import SQLAlchemyError

    from inferlab.auth.stack import build_auth, open_database
    from inferlab.errors import StoreUnavailable
    from inferlab.ratelimit.grants import LimitAdmin, configured_defaults
    from inferlab.ratelimit.overrides import OverrideCache
    from inferlab.store import SqlIdentityStore
    from inferlab.store.limits import SqlLimitStore
    from inferlab.store.tiers import SqlTierStore
    from inferlab.tenants.ceiling import TierCeiling

    database = open_database(settings.auth, settings.data_dir, settings.database_url)
    errors = (SQLAlchemyError, OSError, StoreUnavailable)
    tiers = SqlTierStore(database)
    directory = tenant_directory(settings, tenants=SqlIdentityStore(database), tiers=tiers, errors=errors)
    ceiling = TierCeiling(directory)  # the delegation ceiling's tier part: keys' models, stored limits
    auth = build_auth(settings.auth, database, data_dir=settings.data_dir, check_key=ceiling.check_key)
    store = SqlLimitStore(database)
    overrides = OverrideCache(store, settings.auth.key_cache_ttl_s, errors=errors)
    defaults = configured_defaults(settings.ratelimit.limits, settings.quota.limits)
    limit_admin = LimitAdmin(auth.admin, store, overrides, defaults=defaults, tier_defaults=ceiling.limit_defaults,
                             audit=auth.audit)
    tenant_admin = TenantManager(auth.store, tiers, directory, forget_key=auth.service.forget, audit=auth.audit)
    return AdminServices(auth, overrides, limit_admin, directory, tenant_admin)


def tenant_directory(settings: Settings, *, tenants: TenantReader | None = None, tiers: TierReader | None = None,
                     errors: tuple[type[BaseException], ...] = ()) -> TenantDirectory:
    """Tenants and their tiers: from the store when authentication is on, else everyone is the
    default tenant on the default tier."""
    return TenantDirectory(TierCatalogue(settings.tenants.tiers), settings.tenants.default_tier, tenants=tenants,
                           tiers=tiers, ttl_s=settings.auth.key_cache_ttl_s, errors=errors)


def _redis(settings: Settings, lifecycle: Lifecycle, *, limits: bool, cache: bool) -> Any | None:
    """One Redis client per process, shared by the parts that keep their state in Redis."""
    if settings.redis_url is None or not (limits or cache):
        return None
    from inferlab.redisconn import redis_client

    client = redis_client(settings.redis_url.get_secret_value(),
                          timeout_s=max(settings.ratelimit.redis_timeout_s, settings.cache.redis_timeout_s))
    lifecycle.on_stop(client.aclose)
    return client


def _reservation_store(admin: AdminServices | None) -> Any | None:
    """Reservations in the SQL store when there is one (authentication on)."""
    if admin is None:
        return None
    from inferlab.store.reservations import SqlReservationStore

    return SqlReservationStore(admin.auth.database)


def _metering(settings: Settings, router: ModelRouter, session: aiohttp.ClientSession,
              metrics: GatewayMetrics | None, costs: CostTracker, sink: Any | None) -> Metering | None:
    """features.metering: the usage events' step (priced by ``costs``), outbox and shipper (into
    the store, and ``sink`` — ClickHouse — when it answers the reports), on the store's database."""
    if not settings.features.metering:
        return None
    from inferlab.metering.build import build_metering
    from inferlab.metering.usage_build import hardware_of

    observer = metrics.metering if metrics is not None else None
    return build_metering(settings, router, session, observer=observer, shipper_observer=observer, pricing=costs,
                          hardware=hardware_of(settings), sink=sink,
                          usage_observer=metrics.tenants if metrics is not None else None)


def _registry(settings: Settings, admin: AdminServices | None, router: ModelRouter, health: HealthMonitor,
              scraper: LoadScraper, queues: WaitQueues, session: aiohttp.ClientSession, client: EngineClient,
              metrics: GatewayMetrics | None, logger: logging.Logger, lifecycle: Lifecycle) -> Registry | None:
    """features.registry: versions and aliases from the store, hot-reloaded; the store's database
    is the identity store's when authentication is on, else one of its own (SQLite by default)."""
    if not settings.features.registry:
        return None
    from inferlab.auth.stack import open_database
    from inferlab.registry.build import build_registry

    if admin is not None:
        database = admin.auth.database
    else:
        database = open_database(settings.auth, settings.data_dir, settings.database_url)
        lifecycle.on_stop(database.close)

    def build(config: ModelConfig) -> Replicas:
        return build_replicas([config], settings.engines, session, client=client,
                              max_line_bytes=settings.upstream.max_stream_line_bytes, pool_observer=metrics,
                              engine_observer=metrics, logger=logger)

    return build_registry(settings, database, router, build, health=health, scraper=scraper, queues=queues,
                          observer=metrics.variants if metrics is not None else None,
                          logger=logger.getChild("registry"))


def _batches(settings: Settings, database: Any, chain: Chain, router: ModelRouter,
             logger: logging.Logger) -> BatchService:
    """The Batch API: files in the data directory, records in the store, the runner over the chain."""
    from inferlab.batches.files import FileService
    from inferlab.batches.runner import ChainBatchRunner
    from inferlab.batches.service import BatchService
    from inferlab.store.batches import SqlBatchStore

    store = SqlBatchStore(database)
    files = FileService(store, settings.data_dir.expanduser() / "files", max_bytes=settings.batches.max_file_bytes)
    runner = ChainBatchRunner(store, files, chain, router, settings.batches, logger)
    return BatchService(store, files, runner, settings.batches)


def _schema_ready(database: Any, auto_migrate: bool) -> Any:
    """A lifecycle part: the schema at head (or checked) before anything after it starts."""

    @contextlib.asynccontextmanager
    async def part() -> AsyncIterator[None]:
        from inferlab.auth.stack import migrate_or_check

        try:  # a store down at start must not stop the gateway (metering buffers meanwhile; its connects are bounded)
            await migrate_or_check(database, auto_migrate)
        except Exception:  # the shipper migrates once the store answers
            logging.getLogger("inferlab.store").warning("the schema could not be checked at start: stored "
                                                        "responses and batches answer 503 until it is", exc_info=True)
        yield

    return part


def _autoscaler(settings: Settings, replicas: Replicas, queues: WaitQueues, session: aiohttp.ClientSession,
                metrics: GatewayMetrics | None, logger: logging.Logger, lifecycle: Lifecycle) -> Autoscaler | None:
    """autoscale.enabled: the pools' decisions in the background, started after the engines (its
    registration follows theirs) and stopped before them: its own engines are drained and stopped."""
    if not settings.autoscale.enabled:
        return None
    from inferlab.autoscale.build import build_autoscaler

    autoscaler = build_autoscaler(settings, replicas, queues, session,
                                  observer=metrics.autoscale if metrics is not None else None,
                                  logger=logger.getChild("autoscale"))
    if autoscaler is not None:
        lifecycle.on_stop(autoscaler.close)
        lifecycle.background(autoscaler.run)
    return autoscaler


def _idempotency(settings: Settings, database: Any, lifecycle: Lifecycle, logger: logging.Logger) -> Idempotency | None:
    """idempotency.enabled: Idempotency-Key on admin and customer writes, its keys in the store when
    there is one (else in process), expired keys purged in the background."""
    if not settings.idempotency.enabled:
        return None
    from inferlab.idempotency.service import build_idempotency

    idempotency = build_idempotency(settings.idempotency, database, logger.getChild("idempotency"))
    lifecycle.background(idempotency.keep_purging)
    return idempotency


def _fim_step(settings: Settings, logger: logging.Logger) -> FillInTheMiddle:
    return FillInTheMiddle({model.name: fim_policy(model, settings.engines, logger) for model in settings.models})


async def build_services(settings: Settings, *, logger: logging.Logger | None = None,
                         attached: Mapping[str, EngineHandoff] | None = None) -> Services:
    """Build the gateway's components; ``running()`` starts them. ``attached``: a worker of
    ``serve --workers``, whose managed engines its supervisor runs (workers/supervisor.py)."""
    logger = logger or logging.getLogger("inferlab")
    lifecycle = Lifecycle()
    dependencies = Dependencies()
    metrics = GatewayMetrics(models=[m.name for m in settings.models], top_tenants=settings.tenants.top_tenants_in_metrics
                             ) if settings.features.metrics else None
    admin = build_admin_services(settings) if settings.features.auth else None
    if admin is not None:  # opens the store (migrate, bootstrap key) before anything else starts
        lifecycle.add(admin.auth.running)
        # every authenticated request needs the store; the ping is bounded by the store's own guard
        dependencies.add(DependencyCheck("database", admin.auth.database.ping, critical=True,
                                         timeout_s=settings.auth.store_timeout_s + 0.5))
    lifecycle.on_stop(dependencies.close)
    from inferlab.cache.build import uses_redis as cache_uses_redis
    from inferlab.ratelimit.build import uses_redis as limits_use_redis

    configured = settings.redis_url is not None
    limits_on_redis = settings.features.ratelimit and limits_use_redis(settings.ratelimit, configured)
    cache_on_redis = settings.features.cache and cache_uses_redis(settings.cache, configured)
    resources_on_redis = settings.features.resources and (
        settings.resources.backend == "redis" or (settings.resources.backend == "auto" and configured))
    counters_on_redis = scheduler_uses_redis(settings.scheduler, configured)
    redis = _redis(settings, lifecycle, limits=limits_on_redis,
                   cache=cache_on_redis or resources_on_redis or counters_on_redis)

    session = http_session(settings.upstream)
    lifecycle.on_stop(session.close)
    client = engine_client(settings.upstream)
    lifecycle.on_stop(client.close)
    try:
        replicas = build_replicas(
            settings.models, settings.engines, session, client=client, max_line_bytes=settings.upstream.max_stream_line_bytes,
            pool_observer=metrics, engine_observer=metrics, logger=logger, attached=attached,
        )
    except BaseException:
        await session.close()
        await client.close()
        if redis is not None:
            await redis.aclose()
        raise
    pools = [pool for model in replicas.models for pool in model.pools()]
    router = ModelRouter([m.pool for m in replicas.models], [m.embeddings for m in replicas.models if m.embeddings])
    built_queues = build_queues(settings.models, metrics, settings=settings.scheduler,
                                redis=redis if counters_on_redis else None, logger=logger.getChild("scheduler"))
    queues = built_queues.queues
    if built_queues.sync is not None:
        lifecycle.background(built_queues.sync.run)
    health = HealthMonitor(pools, {id(pool): health_policy(m.model) for m in replicas.models for pool in m.pools()},
                           logger.getChild("router"))
    scraper = LoadScraper(
        pools, session, interval_s=min((m.health.scrape_interval_s for m in settings.models), default=1.0)
    )

    @contextlib.asynccontextmanager
    async def engines_running() -> AsyncIterator[None]:
        for engine in replicas.engines:
            engine.start()
        if replicas.coordinator is not None:
            await replicas.coordinator.start()
        health.start()
        scraper.start()
        try:
            yield
        finally:
            await health.stop()
            await scraper.stop()
            for engine in replicas.engines:
                await engine.stop()
            if replicas.coordinator is not None:
                await replicas.coordinator.stop()

    registry = _registry(settings, admin, router, health, scraper, queues, session, client, metrics, logger, lifecycle)
    if registry is not None:  # its schema and seed before metering's shipper migrates in the background
        lifecycle.add(registry.service.preparing)

    limits = None
    if settings.features.ratelimit:
        from inferlab.ratelimit.build import build_rate_limits  # redis is imported only when configured

        limits = build_rate_limits(
            settings.ratelimit, settings.quota, settings.pricing,
            redis=redis if limits_on_redis else None, metrics=metrics,
            logger=logger.getChild("ratelimit"), lifecycle=lifecycle, dependencies=dependencies,
            stored=admin.limit_overrides.of if admin is not None else None,
        )
    cache = None
    if settings.features.cache:
        from inferlab.cache.build import build_cache

        cache = build_cache(
            settings.cache, {m.name: m.cache_version() for m in settings.models},
            redis=redis if cache_on_redis else None, metrics=metrics,
            logger=logger.getChild("cache"), dependencies=dependencies,
        )
    from inferlab.metering.usage_build import analytics_sink, cost_tracker

    costs = cost_tracker(settings, logger.getChild("usage"))
    sink = analytics_sink(settings, session, lifecycle)  # ClickHouse's tables exist before the shipper ships
    metering = _metering(settings, router, session, metrics, costs, sink)
    if admin is None and metering is not None:  # the shipper migrates in the background; stored objects
        lifecycle.add(_schema_ready(metering.store.database, settings.auth.auto_migrate))  # need it at once
    if metering is not None:  # stopped after the engines, before the store: the buffer shipped last
        lifecycle.add(metering.running)
    lifecycle.add(engines_running)
    autoscaler = _autoscaler(settings, replicas, queues, session, metrics, logger, lifecycle)
    if registry is not None:  # after the engines: a version's engines start once the configured ones have
        lifecycle.add(registry.service.running)
        for loop in (registry.service.watch, registry.service.keep_flushing, registry.service.keep_judging):
            lifecycle.background(loop)
    if admin is not None:
        tenants = admin.tenants
        lifecycle.background(tenants.keep_sweeping)
    else:
        tenants = tenant_directory(settings)

    resources = None
    if settings.features.resources:
        from inferlab.resources.build import build_resources

        resources = build_resources(settings, tenants, redis=redis if resources_on_redis else None, session=session,
                                    tenant_store=admin.auth.store if admin is not None else None,
                                    logger=logger.getChild("resources"),
                                    metrics=metrics.tenants if metrics is not None else None,
                                    reservations=_reservation_store(admin))
        lifecycle.add(resources.running)

    from inferlab.metering.usage_build import build_usage, tenant_budgets

    database = admin.auth.database if admin is not None else metering.store.database if metering is not None else None
    usage = build_usage(settings, database=database, session=session, lifecycle=lifecycle,
                        logger=logger.getChild("usage"), sink=sink, tracker=costs,
                        budget_of=tenant_budgets(settings, database, tenants) if database is not None else None)

    browser = None
    if settings.features.browser:
        from inferlab.browser.build import build_browser

        browser = build_browser(settings, recorder=metering.outbox if metering is not None else None,
                                tenants=tenants)
        lifecycle.add(browser.running)
    billing = None
    if settings.billing.enabled and database is not None:  # invoices from the usage ledger in the same store
        from inferlab.billing.build import build_billing

        billing = build_billing(settings, database, costs.book, session=session, lifecycle=lifecycle,
                                tenant_admin=admin.tenant_admin if admin is not None else None,
                                directory=tenants if admin is not None else None, logger=logger.getChild("billing"))

    code = build_codelab(settings, metrics, lambda: chain)
    steps: list[Step] = [metering.step] if metering is not None else []  # first: every call leaves an event
    responses = None
    if settings.responses.enabled:  # /v1/responses: translated onto a chat call before anything reads it
        from inferlab.responses.service import build_responses

        responses = build_responses(settings.responses, database, logger.getChild("responses"))
        lifecycle.background(responses.keep_purging)
        steps.append(only_for([routes.RESPONSES], responses.step))
    if code is not None:
        steps += [only_for([routes.CODE_COMPLETIONS], code.completions),
                  only_for([routes.CODE_REVIEW, routes.CODE_DOCS], code.assist)]
    steps.append(ResolveModel(router) if registry is None else registry.step)
    if metrics is not None:
        steps.append(CountRefusals(metrics))
    steps.append(EnforceTier(tenants))
    if browser is not None:
        steps.append(browser.policy)  # after the tier step: a fallback is refused by the caller's tier
    slo = None
    if settings.features.slo:
        slo = SloTracker(settings.slo, metrics.slo if metrics is not None else None)
        steps.append(TrackSlo(slo))
    if code is not None:
        steps.append(only_for([routes.CODE_COMPLETIONS], code.context))
        lifecycle.background(code.keep_indexes_fresh)
    steps.append(only_for(routes.TEXT_COMPLETIONS, _fim_step(settings, logger.getChild("code"))))
    if metrics is not None:
        steps.append(CountRequests(metrics))
    if limits is not None:
        steps.append(limits)
    if cache is not None:
        steps.append(cache)
    if resources is not None:
        steps.append(AllocateResources(resources.leases, resources.capacities, queue_timeout_s=settings.resources.queue_timeout_s,
                                       default_max_tokens=settings.resources.default_max_tokens))
    from inferlab.completions.step import LegacyCompletions

    # echo and integer logprobs on /v1/completions, in the legacy shape
    steps.append(only_for(routes.TEXT_COMPLETIONS, LegacyCompletions()))
    steps.append(RouteToReplica(router, Failover(queues)))
    chain = Chain(steps)
    batches = None
    if settings.batches.enabled and database is not None:  # batches outlive the process: the store keeps them
        batches = _batches(settings, database, chain, router, logger.getChild("batches"))
        lifecycle.background(batches.runner.run)  # started last, stopped first: lines in flight end cleanly
    from inferlab.anomaly.build import build_anomaly

    anomaly = build_anomaly(settings, database, session, lifecycle, metrics, logger.getChild("anomaly"))
    return Services(
        settings=settings, drain=DrainController(), metrics=metrics, router=router, queues=queues,
        replicas=replicas, dependencies=dependencies, admin=admin, limits=limits, cache=cache, tenants=tenants,
        resources=resources, slo=slo, metering=metering, usage=usage, code=code, responses=responses,
        tokens=TokenService(router, session), batches=batches, browser=browser,
        chain=chain, lifecycle=lifecycle, billing=billing,
        registry=registry.service if registry is not None else None,
        anomaly=anomaly,
        autoscaler=autoscaler,
        idempotency=_idempotency(settings, database, lifecycle, logger),
    )

