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
from inferlab.api.middleware import error_response, from_http_exception
from inferlab.auth.policy import RoutePolicy
from inferlab.config.tenants import Feature
from inferlab.errors import InferLabError, PermissionDenied
from inferlab.tenants.directory import TenantContext, TenantDirectory, refusal
from inferlab.tenants.tier import TIER_HEADER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TENANT = web.RequestKey("tenant", TenantContext)


def build_tenancy_middleware(
    directory: TenantDirectory, policy: RoutePolicy, route_features: Mapping[str, Feature], *, authenticated: bool,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """``policy``: every declared route's rule (public routes have no tenant). ``authenticated``:
    whether the auth middleware runs first; when it does not, every caller is the default tenant.
    ``route_features``: canonical path → the tier feature the route needs."""

    @web.middleware
    async def tenancy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = canonical_route(request)
        rule = policy.rule(request.method, route) if route is not None else None
        if rule is not None and rule.group == "public":
            return await handler(request)
        principal = request.get(PRINCIPAL)
        if principal is not None:
            context = await directory.context(principal.tenant_id)
        elif authenticated:
            return await handler(request)
        else:
            context = directory.default
        request[TENANT] = context
        try:
            if not context.active:
                raise refusal(context)
            feature = route_features.get(route or "")
            if feature is not None and feature not in context.tier.features:
                raise PermissionDenied(f"The {context.tier.name} tier does not include {feature}",
                                       code="feature_not_in_tier")
            response = await handler(request)
        except InferLabError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:  # no such route or method, for a known caller: its tier too
            if exc.status < 400:
                raise
            response = error_response(from_http_exception(exc))
        if not response.prepared:
            response.headers[TIER_HEADER] = context.tier.name
        return response

    return tenancy_middleware

