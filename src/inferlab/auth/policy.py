"""Who may do what: the route rules' vocabulary, the policy built from them, and the delegation rules.

Route groups (a credential's scopes name the groups it may reach):

    public      no credential: /health, /ready, /metrics (platform-admin when auth.protect_metrics)
                and, while server.docs is on, the API description (/docs and the openapi.json files)
    inference   the OpenAI-compatible API and the planning calculators; model-scoped
    admin       /admin/...: keys (any role: its own keys), users, limit changes and the audit log
                (tenant-admin), tenants and backend pools (platform-admin; tenant admins don't
                see shared infrastructure)
    billing     reserved for phase 4

A rule with ``session=True`` is a dashboard page (``/ui``): its credential is the signed session
cookie (``inferlab.web.session``), its unsafe methods need the session's CSRF token, and the same
groups and roles apply to the principal the session names.

Each route family declares its routes' ``RouteRule`` beside its handlers (``inferlab.api.routes.
RouteSpec``); the composition root builds one ``RoutePolicy`` from all of them. A route without a
rule has no decision: the middleware refuses it (401 without a credential, 403 ``no_policy`` with
one) and the route-inventory test fails until its family declares one.

Delegation ceiling: an actor can never create or change a key or user so that it holds more than
the actor's own rights — role rank, tenant, route groups, models, expiry — and cannot change its
own privileged fields (role, tenant, disabled) at all. Stored limits are edited by tenant admins
(``LIMIT_EDITOR``; members only read their own) within their own effective limits, and by platform
admins freely (``inferlab.ratelimit.grants``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from inferlab.auth.model import ROLE_RANK, Principal, Role, Scopes
from inferlab.errors import NotFound, PermissionDenied

Group = Literal["public", "inference", "admin", "billing"]


@dataclass(frozen=True, slots=True)
class RouteRule:
    group: Group
    min_role: Role = "member"
    model_in: Literal["body", "path"] | None = None  # where the model a model-scoped key is checked against is
    session: bool = False  # a dashboard page (/ui): the credential is the signed session cookie, not a header


PUBLIC = RouteRule("public")
INFERENCE = RouteRule("inference")
MODEL_IN_BODY = RouteRule("inference", model_in="body")  # a model-scoped key must name one of its models
MODEL_IN_PATH = RouteRule("inference", model_in="path")  # ... in the path's {model_id}
ADMIN_SELF = RouteRule("admin", "member")
TENANT_ADMIN = RouteRule("admin", "tenant-admin")
PLATFORM_ADMIN = RouteRule("admin", "platform-admin")
UI_MEMBER = RouteRule("inference", session=True)  # the customer portal: any signed-in user, their tenant's data
UI_KEYS = RouteRule("admin", "member", session=True)  # their own keys (like /admin/keys)
UI_ADMIN = RouteRule("admin", "platform-admin", session=True)  # the operator's dashboards
UI_BILLING = RouteRule("admin", "tenant-admin", session=True)  # the portal's payment method: a tenant admin
LIMIT_EDITOR: Role = "tenant-admin"  # the least role that may change stored limits


class RoutePolicy:
    """The rule of every route, keyed by method and canonical path (``/v1/models/{model_id}``)."""

    def __init__(self, routes: Mapping[tuple[str, str], RouteRule]) -> None:
        self.routes = dict(routes)

    def rule(self, method: str, canonical_path: str) -> RouteRule | None:
        return self.routes.get(("GET" if method == "HEAD" else method, canonical_path))


def authorize(principal: Principal, rule: RouteRule) -> None:
    """Raise ``PermissionDenied`` unless the principal's role and scopes reach the route."""
    if rule.group == "public":
        return
    if rule.group not in principal.scopes.groups:
        raise PermissionDenied(f"This credential is not scoped for the {rule.group} API", code="insufficient_scope")
    if principal.rank < ROLE_RANK[rule.min_role]:
        raise PermissionDenied(f"This route needs the {rule.min_role} role", code="insufficient_role")


def authorize_model(principal: Principal, model: str) -> None:
    if not principal.scopes.allows_model(model):
        raise PermissionDenied(f"This credential may not use the model '{model}'", code="model_not_allowed",
                               param="model")


# ---- tenancy and delegation -----------------------------------------------------------------------
def visible(actor: Principal, tenant_id: str) -> bool:
    return actor.role == "platform-admin" or actor.tenant_id == tenant_id


def require_visible(actor: Principal, tenant_id: str, what: str) -> None:
    """A foreign object answers 404, exactly like a missing one: ids never leak across tenants."""
    if not visible(actor, tenant_id):
        raise NotFound(f"No such {what}")


def check_grant(
    actor: Principal,
    *,
    tenant_id: str,
    role: Role,
    scopes: Scopes | None = None,
    expires_at: datetime | None = None,
) -> None:
    """The delegation ceiling for creating a user (role) or a key (role of its owner + scopes)."""
    if not visible(actor, tenant_id):
        raise PermissionDenied("Only a platform admin may act in another tenant", code="tenant_not_allowed",
                               param="tenant_id")
    if ROLE_RANK[role] > actor.rank:
        raise PermissionDenied(f"You cannot grant the {role} role: it exceeds your own", code="delegation_ceiling",
                               param="role")
    if scopes is not None and not scopes.within(actor.scopes):
        raise PermissionDenied("You cannot grant scopes (route groups or models) your credential lacks",
                               code="delegation_ceiling", param="scopes")
    if actor.expires_at is not None and (expires_at is None or expires_at > actor.expires_at):
        raise PermissionDenied("A key you create cannot outlive your own", code="delegation_ceiling",
                               param="expires_at")


def require_limit_editor(actor: Principal) -> None:
    if actor.rank < ROLE_RANK[LIMIT_EDITOR]:
        raise PermissionDenied(f"Changing limits needs the {LIMIT_EDITOR} role", code="insufficient_role")


def check_user_change(actor: Principal, target_id: str, target_tenant: str, target_role: Role,
                      new_role: Role | None, disabled: bool | None) -> None:
    """Privileged fields (role, disabled) are never changed by the user they concern, nor above
    the actor's rank; a tenant admin cannot touch a platform admin."""
    require_visible(actor, target_tenant, "user")
    if target_id == actor.user_id and (new_role is not None or disabled is not None):
        raise PermissionDenied("You cannot change your own role or status", code="self_elevation")
    if ROLE_RANK[target_role] > actor.rank:
        raise PermissionDenied("You cannot change a user whose role exceeds your own", code="delegation_ceiling")
    if new_role is not None and ROLE_RANK[new_role] > actor.rank:
        raise PermissionDenied(f"You cannot grant the {new_role} role: it exceeds your own",
                               code="delegation_ceiling", param="role")
