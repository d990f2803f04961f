"""The identity records as the admin API and the CLI show them: JSON-ready, never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inferlab.auth.model import ApiKey, Tenant, User


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def user_json(user: User) -> dict[str, Any]:
    return {"object": "user", "id": user.id, "tenant_id": user.tenant_id, "name": user.name, "role": user.role,
            "disabled": user.disabled, "created_at": _iso(user.created_at)}


def key_json(key: ApiKey) -> dict[str, Any]:
    models = key.scopes.models
    return {
        "object": "api_key", "id": key.id, "prefix": f"il-{key.id}", "user_id": key.user_id,
        "tenant_id": key.tenant_id, "name": key.name, "route_groups": sorted(key.scopes.groups),
        "models": None if models is None else sorted(models), "expires_at": _iso(key.expires_at),
        "revoked": key.revoked, "created_at": _iso(key.created_at), "last_used_at": _iso(key.last_used_at),
    }


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {"object": "tenant", "id": tenant.id, "name": tenant.name, "tier": tenant.tier, "status": tenant.status,
            "overrides": tenant.overrides, "created_at": _iso(tenant.created_at)}
