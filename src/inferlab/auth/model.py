"""The identity model as plain data: roles, scopes, the stored records and the request ``Principal``.

    Tenant ─┬─ User (role) ─┬─ ApiKey (name, scopes, expiry, revoked, last used)
            │               └─ ...
            └─ ...

A key acts with its user's role, narrowed by its own scopes. Later phases (tiers, quotas, billing)
hang their own records off ``tenant_id`` and ``user_id``; nothing here needs to change for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Role = Literal["platform-admin", "tenant-admin", "member"]
RouteGroup = Literal["inference", "admin", "billing"]

ROLES: tuple[Role, ...] = ("member", "tenant-admin", "platform-admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
ROUTE_GROUPS: frozenset[str] = frozenset({"inference", "admin", "billing"})
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Scopes:
    """What a credential may reach: route groups, and models (``None``: every model)."""

    groups: frozenset[str] = frozenset({"inference"})
    models: frozenset[str] | None = None

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models

    def within(self, other: Scopes) -> bool:
        """True when these scopes grant nothing ``other`` does not."""
        if not self.groups <= other.groups:
            return False
        if other.models is None:
            return True
        return self.models is not None and self.models <= other.models


ALL_SCOPES = Scopes(frozenset(ROUTE_GROUPS), None)


TenantStatus = Literal["active", "suspended", "deleted"]


@dataclass(frozen=True, slots=True)
class Tenant:
    """A customer. ``tier``: None is the configured default tier; ``overrides``: tier fields set for
    this tenant alone. A deleted tenant keeps its row (its usage history names it); its users are
    disabled and its keys revoked."""

    id: str
    name: str
    created_at: datetime
    tier: str | None = None
    status: TenantStatus = "active"
    overrides: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: never the secret, only its keyed hash."""

    id: str
    user_id: str
    tenant_id: str
    name: str
    key_hash: str
    scopes: Scopes
    expires_at: datetime | None
    revoked: bool
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """A key with the owner facts authentication needs, read in one query."""

    key: ApiKey
    role: Role
    user_disabled: bool


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, attached to the request as ``request[PRINCIPAL]`` for the steps that follow."""

    tenant_id: str
    user_id: str
    role: Role
    scopes: Scopes
    key_id: str | None = None
    expires_at: datetime | None = None
    source: Literal["api_key", "jwt", "local"] = "api_key"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self.role]


LOCAL_OPERATOR = Principal(DEFAULT_TENANT, "local-operator", "platform-admin", ALL_SCOPES, source="local")
"""The CLI's principal: whoever can read the database and the pepper already holds every right."""
