"""The composition root's HTTP side: settings in, a wired aiohttp application out.

``build_services`` (services.py) builds every component and the request chain; this module puts
the middleware and the routes in front of them and ties their start and stop to the app's. Each
route family declares its routes with their access rules (``api/routes.py``); the auth policy and
the OpenAPI documents are built from those declarations. Tests build the app with the settings
(and parts) they need.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from inferlab.api.auth import SessionAuth, build_auth_middleware
from inferlab.api.backends_admin_routes import BackendsAdminRoutes
from inferlab.api.body import BODY_TIMING, BodyTiming
from inferlab.api.caller import CallerOf
from inferlab.api.docs_routes import DocsRoutes
from inferlab.api.engines_admin_routes import EnginesAdminRoutes
from inferlab.api.middleware import build_middleware
from inferlab.api.openai import OpenAIRoutes
from inferlab.api.ops_routes import OpsRoutes
from inferlab.api.routes import DECLARED, RouteSpec, access_rules
from inferlab.api.slo_routes import SloRoutes
from inferlab.api.tenancy import build_tenancy_middleware
from inferlab.api.validation import RequestValidator
from inferlab.auth.policy import RoutePolicy
from inferlab.config import Settings
from inferlab.config.tenants import Feature
from inferlab.coordinator.attached import EngineHandoff
from inferlab.logs import prompt_log
from inferlab.resources.service import ResourceService
from inferlab.services import AdminServices, Services, build_services

SERVICES = web.AppKey("services", Services)


async def create_app(settings: Settings, *, logger: logging.Logger | None = None,
                     attached: Mapping[str, EngineHandoff] | None = None) -> web.Application:
    """Build the gateway. Call inside the event loop; engines start with the app, stop with it
    (``attached``: a ``serve --workers`` worker's engines, run by its supervisor)."""
    logger = logger or logging.getLogger("inferlab")
    services = await build_services(settings, logger=logger, attached=attached)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[build_middleware(services.metrics, logger)],  # + auth, once the routes are declared
        handler_args={"max_field_size": 16384, "auto_decompress": False},  # api/body.py inflates, capped
    )
    app[SERVICES] = services
    app[BODY_TIMING] = BodyTiming.of(settings.server)

    async def lifespan(_: web.Application) -> AsyncIterator[None]:
        async with services.running():
            yield

    app.cleanup_ctx.append(lifespan)
    declared: list[RouteSpec] = []  # each route family declares its routes with their access rules
    caller_of = CallerOf(settings.trusted_proxies)
    validator = RequestValidator(settings.server.max_tokens_limit, settings.server.max_n)
    inference = OpenAIRoutes(
        services.chain, services.router, validator,
        services.drain, caller_of, logger, max_body_bytes=settings.server.max_body_bytes,
        session_headers={model.name: model.routing.session_header for model in settings.models},
        prompts=prompt_log(settings.logging, logger),
    )
    declared += inference.add_to(app)
    if services.code is not None:
        from inferlab.api.code_routes import CodeRoutes

        declared += CodeRoutes(inference, services.code, caller_of, max_body_bytes=settings.server.max_body_bytes,
                               max_tokens=settings.codelab.max_tokens).add_to(app)
    if services.responses is not None:
        from inferlab.api.responses_routes import ResponsesRoutes

        declared += ResponsesRoutes(inference, services.responses, caller_of,
                                    max_body_bytes=settings.server.max_body_bytes,
                                    max_tokens=settings.server.max_tokens_limit).add_to(app)
    if services.batches is not None:
        from inferlab.api.batch_routes import BatchRoutes

        declared += BatchRoutes(services.batches, validator, caller_of,
                                max_body_bytes=settings.server.max_body_bytes).add_to(app)
    from inferlab.api.tokenize_routes import TokenizeRoutes

    declared += TokenizeRoutes(services.tokens, caller_of, max_body_bytes=settings.server.max_body_bytes).add_to(app)
    declared += OpsRoutes(services.router, services.drain, services.metrics, services.engine_states,
                          services.dependencies).add_to(
        app, protect_metrics=services.admin is not None and settings.auth.protect_metrics)
    declared += BackendsAdminRoutes(services.router, services.queues).add_to(app)
    if services.slo is not None:
        declared += SloRoutes(services.slo, settings.slo.windows_s).add_to(app)
    declared += EnginesAdminRoutes(services.engines_report).add_to(app)
    if services.registry is not None:
        from inferlab.api.registry_routes import RegistryRoutes
        from inferlab.registry.admin import RegistryAdmin

        registry = services.registry
        admin = RegistryAdmin(registry.store, stats=registry.stats, changed=registry.refresh,
                              default_unit=settings.registry.unit)
        declared += RegistryRoutes(admin, settings.server.max_body_bytes).add_to(app)
    if services.admin is not None:
        declared += _add_admin(app, services.admin, settings, services.resources)
    if services.usage is not None:
        from inferlab.api.usage_routes import UsageRoutes

        declared += UsageRoutes(services.usage.analytics, services.usage.forecaster,
                                admin=services.admin is not None).add_to(app)
    if services.browser is not None:
        from inferlab.api.browser_routes import BrowserRoutes

        declared += BrowserRoutes(services.browser, caller_of).add_to(app)
    if services.billing is not None:
        from inferlab.api.billing_routes import BillingRoutes

        declared += BillingRoutes(services.billing, settings.server.max_body_bytes,
                                  admin=services.admin is not None).add_to(app)
    if settings.features.planning_api:
        from inferlab.api.planning import add_planning_routes
        from inferlab.planning.catalogue import load_catalogue

        declared += add_planning_routes(app, load_catalogue())
    if services.anomaly is not None:
        from inferlab.api.anomaly_routes import AnomalyRoutes

        declared += AnomalyRoutes(services.anomaly).add_to(app)
    from inferlab.api.autoscale_routes import AutoscaleRoutes

    declared += AutoscaleRoutes(services.autoscaler.snapshot if services.autoscaler is not None else None).add_to(app)
    declared += DocsRoutes(declared, public=settings.server.docs).add_to(app)
    sessions = None
    if services.admin is not None and settings.web.enabled:  # after the docs: the dashboards are no API
        web_routes, sessions = _add_web(app, services, services.admin, settings)
        declared += web_routes
    app[DECLARED] = tuple(declared)
    policy = RoutePolicy(access_rules(declared))  # the union of the declared rules; an undeclared route has none
    if services.admin is not None:
        app.middlewares.append(build_auth_middleware(services.admin.auth.service, policy, sessions))
    features: dict[str, Feature] = {spec.canonical: "planning" for spec in declared if "planning" in spec.tags}
    app.middlewares.append(build_tenancy_middleware(services.tenants, policy, features,
                                                    authenticated=services.admin is not None))
    if services.idempotency is not None:  # innermost: keys are scoped to the principal the auth middleware set
        from inferlab.api.idempotency import build_idempotency_middleware, idempotent_routes

        app.middlewares.append(build_idempotency_middleware(services.idempotency, idempotent_routes(declared),
                                                            logger.getChild("idempotency")))
    return app


def _add_admin(app: web.Application, admin: AdminServices, settings: Settings,
               resources: ResourceService | None) -> list[RouteSpec]:
    from inferlab.api.admin_routes import AdminRoutes
    from inferlab.api.audit_routes import AuditRoutes
    from inferlab.api.limits_routes import LimitRoutes
    from inferlab.api.tenant_routes import TenantRoutes

    declared = AdminRoutes(admin.auth.admin, settings.server.max_body_bytes).add_to(app)
    declared += TenantRoutes(admin.tenant_admin, settings.server.max_body_bytes,
                             settings.tenants.default_tier).add_to(app)
    declared += LimitRoutes(admin.limit_admin, settings.server.max_body_bytes).add_to(app)
    if resources is not None:
        from inferlab.api.resources_routes import ResourceRoutes
        from inferlab.resources.capacity import managed_llamacpp

        per_replica = {m.name: managed_llamacpp(m.parallel, m.context_size) for m in settings.models
                       if m.backend == "llamacpp"}
        from inferlab.resources.build import priced_options

        declared += ResourceRoutes(resources, settings.server.max_body_bytes, per_replica,
                                   priced_options(settings, logging.getLogger("inferlab.resources"))).add_to(app)
    return declared + AuditRoutes(admin.auth.audit).add_to(app)


def _add_web(app: web.Application, services: Services, admin: AdminServices,
             settings: Settings) -> tuple[list[RouteSpec], SessionAuth]:
    """The dashboards (``/ui``): sessions signed with a secret derived from the pepper (or
    ``web.session_secret``), pages reading the services the API routes read."""
    from inferlab.api.web_routes import WebRoutes
    from inferlab.api.web_session import WebAccessRoutes, WebSessions
    from inferlab.auth.pepper import load_pepper
    from inferlab.web.anomaly_feed import IncidentFeed
    from inferlab.web.autoscale_feed import DecisionFeed
    from inferlab.web.cache import CachedAnalytics
    from inferlab.web.render import Renderer
    from inferlab.web.session import SessionSigner, session_secret
    from inferlab.web.sources import Sources

    configured = settings.web.session_secret
    secret = session_secret(configured.get_secret_value().encode() if configured is not None else None,
                            load_pepper(settings.auth, settings.data_dir))
    auth = admin.auth.service
    sessions = WebSessions(SessionSigner(secret, settings.web.session_ttl_s), auth,
                           secure=settings.web.secure_cookie, ttl_s=settings.web.session_ttl_s)
    renderer = Renderer()
    registry = None
    if services.registry is not None:
        from inferlab.registry.admin import RegistryAdmin

        registry = RegistryAdmin(services.registry.store, stats=services.registry.stats,
                                 changed=services.registry.refresh, default_unit=settings.registry.unit)
    budget_of = None
    if services.usage is not None:
        from inferlab.metering.usage_build import tenant_budgets

        budget_of = tenant_budgets(settings, admin.auth.database, admin.tenants)
    sources = Sources(
        identity=admin.auth.admin, audit=admin.auth.audit, tenants=admin.tenant_admin, router=services.router,
        pool_queue=services.queues.snapshot, analytics=services.usage.analytics if services.usage else None,
        forecaster=services.usage.forecaster if services.usage else None, budget_of=budget_of, slo=services.slo,
        registry=registry, billing=services.billing.engine if services.billing is not None else None,
        autoscaler=DecisionFeed(services.autoscaler) if services.autoscaler is not None else None,
        anomalies=IncidentFeed(services.anomaly) if services.anomaly is not None else None,
        platform_usage=CachedAnalytics(services.usage.analytics, settings.web.platform_cache_s)
        if services.usage is not None else None,
        cards=services.billing.cards if services.billing is not None else None,
    )
    declared = WebAccessRoutes(sessions, auth, renderer).add_to(app)
    declared += WebRoutes(sources, sessions, renderer, refresh_s=settings.web.refresh_s).add_to(app)
    return declared, sessions
