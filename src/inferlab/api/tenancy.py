"""The tenancy middleware: every request of a known caller is answered in its tenant's terms.

After authentication (or for every request when it is off: the default tenant), it resolves the
caller's tenant once (``TenantDirectory``, cached): a suspended or closed tenant gets 403 on every
route; a route whose feature the tier lacks (the planning API) gets 403 naming the tier; every
response to the caller — errors included — carries ``x-inferlab-tier``. Public routes (health,
readiness, metrics, docs) have no caller and no tier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from inferlab.api.auth import PRINCIPAL, canonical_route
from inferlab.api.middleware import TENANT
from inferlab.auth.policy import RoutePolicy
from inferlab.config.tenants import Feature
from inferlab.errors import PermissionDenied
from inferlab.tenants.directory import TenantContext, TenantDirectory, refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]



def build_tenancy_middleware(
    directory: TenantDirectory, policy: RoutePolicy, route_features: Mapping[str, Feature], *, authenticated: bool,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """``policy``: every declared route's rule (public routes have no tenant). ``authenticated``:
    whether the auth middleware runs first; when it does not, every caller is the default tenant.
    ``route_features``: canonical path → the tier feature the route needs."""

    def admit(request: web.Request, context: TenantContext, route: str | None) -> None:
        request[TENANT] = context  # the gateway middleware names its tier on the answer, errors included
        if not context.active:
            raise refusal(context)
        feature = route_features.get(route or "")
        if feature is not None and feature not in context.tier.features:
            raise PermissionDenied(f"The {context.tier.name} tier does not include {feature}",
                                   code="feature_not_in_tier")

    async def resolved(request: web.Request, handler: Handler, tenant_id: str, route: str | None) -> web.StreamResponse:
        admit(request, await directory.context(tenant_id), route)
        return await handler(request)

    @web.middleware
    def tenancy_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        """The handler's own coroutine once the tenant is known (aiohttp awaits what a middleware
        returns): no frame of this middleware around a request whose tenant is cached."""
        route = canonical_route(request)
        rule = policy.rule(request.method, route) if route is not None else None
        if rule is not None and rule.group == "public":
            return handler(request)
        principal = request.get(PRINCIPAL)
        if principal is not None:
            context = directory.cached(principal.tenant_id)
            if context is None:
                return resolved(request, handler, principal.tenant_id, route)
        elif authenticated:
            return handler(request)
        else:
            context = directory.default
        admit(request, context, route)
        return handler(request)

    return tenancy_middleware

