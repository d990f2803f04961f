"""Tenant and tier administration, with every policy check applied (the admin API and the CLI).

- Platform admins create, rename, re-tier, override, suspend, resume and delete tenants, and add,
  replace and delete stored tiers.
- Tenant admins see their own tenant (and may rename it) and read the tiers; another tenant is a
  404, exactly like a missing one. Members manage none of this.
- Deleting a tenant disables its users and revokes its keys; its row stays, so its usage history
  keeps naming it, and its id is never reused. The default tenant and the actor's own tenant cannot
  be deleted or suspended (that would lock the platform's admins out).

Every change is audited and applied to this replica's tenant cache at once (other replicas within
the cache's TTL); suspending or deleting a tenant interrupts its requests in flight.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from inferlab.auth.audit import Action, AuditLog, State
from inferlab.auth.model import DEFAULT_TENANT, Principal, Tenant, TenantStatus
from inferlab.auth.protocol import Conflict
from inferlab.config.tenants import TierSpec
from inferlab.errors import InvalidRequest, NotFound, PermissionDenied
from inferlab.tenants.directory import TenantDirectory
from inferlab.tenants.tier import check_overrides

KEEP: Any = object()
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # as the admin API's body checks it


class TenantStore(Protocol):
    async def add_tenant(self, tenant: Tenant) -> None: ...
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    async def list_tenants(self, *, limit: int, after: str | None) -> Sequence[Tenant]: ...
    async def update_tenant(
        self, tenant_id: str, *, name: str = ..., tier: str | None = ..., status: TenantStatus = ...,
        overrides: dict[str, Any] | None = ...,
    ) -> Tenant | None: ...
    async def close_tenant(self, tenant_id: str, when: datetime) -> list[str]: ...
    async def count_tenants_on_tier(self, tier: str) -> int: ...


class TierStore(Protocol):
    async def all_tiers(self) -> dict[str, dict[str, Any]]: ...
    async def put_tier(self, name: str, spec: dict[str, Any], when: datetime) -> None: ...
    async def delete_tier(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class TierView:
    name: str
    spec: TierSpec
    origin: str  # shipped | configured | stored

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, **self.spec.model_dump(mode="json")}


def tenant_state(tenant: Tenant) -> State:
    return {"id": tenant.id, "name": tenant.name, "tier": tenant.tier, "status": tenant.status,
            "overrides": tenant.overrides}


def _platform_only(actor: Principal, what: str) -> None:
    if actor.role != "platform-admin":
        raise PermissionDenied(f"Only a platform admin may {what}", code="insufficient_role")


class TenantManager:
    def __init__(
        self, tenants: TenantStore, tiers: TierStore, directory: TenantDirectory, *,
        forget_key: Callable[[str], None] = lambda key_id: None, audit: AuditLog | None = None,
    ) -> None:
        self._tenants = tenants
        self._tiers = tiers
        self._directory = directory
        self._forget_key = forget_key
        self._audit = audit

    async def _record(self, actor: Principal, action: Action, target: tuple[str, str, str], before: State | None,
                      after: State | None, request_id: str | None) -> None:
        if self._audit is not None:
            await self._audit.record(actor, action, target, before=before, after=after, request_id=request_id)

    # ---- tenants ------------------------------------------------------------------------------
    def _check_tier(self, tier: str | None) -> None:
        if tier is not None and self._directory.catalogue.get(tier) is None:
            raise InvalidRequest(f"No tier '{tier}'", code="unknown_tier", param="tier")

    async def create(self, actor: Principal, tenant_id: str, name: str | None = None, *, tier: str | None = None,
                     overrides: dict[str, Any] | None = None, request_id: str | None = None) -> Tenant:
        _platform_only(actor, "create tenants")
        if not TENANT_ID.match(tenant_id):
            raise InvalidRequest("A tenant id is 1 to 64 lowercase letters, digits, '-' or '_', starting with a "
                                 "letter or digit", code="invalid_value", param="id")
        await self._directory.refresh_tiers()
        self._check_tier(tier)
        tenant = Tenant(tenant_id, name or tenant_id, datetime.now(UTC), tier=tier,
                        overrides=check_overrides(overrides) if overrides else None)
        try:
            await self._tenants.add_tenant(tenant)
        except Conflict:
            raise InvalidRequest(f"A tenant '{tenant_id}' exists (or existed: ids are never reused)",
                                 code="conflict", param="id") from None
        await self._record(actor, "tenant.create", ("tenant", tenant.id, tenant.id), None, tenant_state(tenant),
                           request_id)
        return tenant

    async def get(self, actor: Principal, tenant_id: str) -> Tenant:
        tenant = await self._tenants.get_tenant(tenant_id)
        if tenant is None or not (actor.role == "platform-admin" or tenant.id == actor.tenant_id):
            raise NotFound("No such tenant")
        return tenant

    async def list_tenants(self, actor: Principal, limit: int, after: str | None) -> Sequence[Tenant]:
        if actor.role != "platform-admin":
            own = await self._tenants.get_tenant(actor.tenant_id)
            return [own] if own is not None and (after is None or own.id > after) else []
        return await self._tenants.list_tenants(limit=limit, after=after)

    async def update(self, actor: Principal, tenant_id: str, *, name: str = KEEP, tier: str | None = KEEP,
                     overrides: dict[str, Any] | None = KEEP, request_id: str | None = None) -> Tenant:
        before = await self.get(actor, tenant_id)
        if before.status == "deleted":
            raise NotFound("No such tenant")
        if tier is not KEEP or overrides is not KEEP:
            _platform_only(actor, "change a tenant's tier or overrides")
        if tier is not KEEP:
            await self._directory.refresh_tiers()
            self._check_tier(tier)
        fields: dict[str, Any] = {}
        if name is not KEEP:
            fields["name"] = name
        if tier is not KEEP:
            fields["tier"] = tier
        if overrides is not KEEP:
            fields["overrides"] = check_overrides(overrides) if overrides else None
        return await self._change(actor, before, "tenant.update", fields, request_id)

    async def set_status(self, actor: Principal, tenant_id: str, status: TenantStatus, *,
                         request_id: str | None = None) -> Tenant:
        """Suspend (``suspended``) or resume (``active``) a tenant."""
        _platform_only(actor, "suspend or resume tenants")
        before = await self.get(actor, tenant_id)
        if before.status == "deleted":
            raise NotFound("No such tenant")
        if status == "suspended":
            self._not_own_or_default(actor, tenant_id, "suspend")
        action: Action = "tenant.suspend" if status == "suspended" else "tenant.resume"
        return await self._change(actor, before, action, {"status": status}, request_id)

    async def delete(self, actor: Principal, tenant_id: str, *, request_id: str | None = None) -> Tenant:
        _platform_only(actor, "delete tenants")
        before = await self.get(actor, tenant_id)
        if before.status == "deleted":
            raise NotFound("No such tenant")
        self._not_own_or_default(actor, tenant_id, "delete")
        revoked = await self._tenants.close_tenant(tenant_id, datetime.now(UTC))
        for key_id in revoked:
            self._forget_key(key_id)
        return await self._change(actor, before, "tenant.delete", {"status": "deleted"}, request_id)

    @staticmethod
    def _not_own_or_default(actor: Principal, tenant_id: str, what: str) -> None:
        if tenant_id in (DEFAULT_TENANT, actor.tenant_id):
            raise InvalidRequest(f"You cannot {what} the default tenant or your own", code="invalid_target")

    async def _change(self, actor: Principal, before: Tenant, action: Action, fields: dict[str, Any],
                      request_id: str | None) -> Tenant:
        after = await self._tenants.update_tenant(before.id, **fields)
        if after is None:
            raise NotFound("No such tenant")
        self._directory.forget(before.id)
        await self._directory.context(before.id)  # re-read now: interrupts its requests if no longer active
        await self._record(actor, action, ("tenant", before.id, before.id), tenant_state(before),
                           tenant_state(after), request_id)
        return after

    # ---- tiers --------------------------------------------------------------------------------
    async def tiers(self, actor: Principal) -> list[TierView]:
        if actor.rank == 0:
            raise PermissionDenied("Members cannot list tiers", code="insufficient_role")
        await self._directory.refresh_tiers()
        catalogue = self._directory.catalogue
        views = []
        for name in catalogue.names():
            spec = catalogue.get(name)
            if spec is not None:
                views.append(TierView(name, spec, catalogue.origin(name)))
        return views

    async def tier(self, actor: Principal, name: str) -> TierView:
        for view in await self.tiers(actor):
            if view.name == name:
                return view
        raise NotFound("No such tier")

    async def put_tier(self, actor: Principal, name: str, spec: TierSpec, *, request_id: str | None = None) -> TierView:
        _platform_only(actor, "change tiers")
        await self._directory.refresh_tiers()
        before = self._directory.catalogue.get(name)
        await self._tiers.put_tier(name, spec.model_dump(mode="json"), datetime.now(UTC))
        self._directory.forget()
        await self._directory.refresh_tiers()
        await self._record(actor, "tier.put", ("tier", name, actor.tenant_id),
                           before.model_dump(mode="json") if before is not None else None,
                           spec.model_dump(mode="json"), request_id)
        return TierView(name, spec, "stored")

    async def delete_tier(self, actor: Principal, name: str, *, request_id: str | None = None) -> None:
        """Delete a stored tier: a shipped or configured one of the same name applies again. A
        tier that would vanish while tenants are on it cannot be deleted."""
        _platform_only(actor, "change tiers")
        await self._directory.refresh_tiers()
        catalogue = self._directory.catalogue
        if catalogue.origin(name) != "stored" or catalogue.get(name) is None:
            raise NotFound("No such stored tier (shipped and configured tiers are changed in the config)")
        if not catalogue.is_base(name):
            on_it = await self._tenants.count_tenants_on_tier(name)
            if on_it or name == self._directory.default_tier:
                raise InvalidRequest(f"{on_it} tenant(s) are on the tier '{name}'; move them first",
                                     code="tier_in_use")
        before = catalogue.get(name)
        await self._tiers.delete_tier(name)
        self._directory.forget()
        await self._directory.refresh_tiers()
        await self._record(actor, "tier.delete", ("tier", name, actor.tenant_id),
                           before.model_dump(mode="json") if before is not None else None, None, request_id)
