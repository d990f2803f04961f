"""The delegation ceiling, extended to the tier: a tenant admin grants nothing its tenant's tier
does not allow.

- a key's explicit ``models`` must all be in the tier (403 ``model_not_in_tier``); a key for
  every model is still bounded by the tier on each request;
- the tier's ``tenant_limits`` and ``key_limits`` are the defaults of the tenant's and its keys'
  stored-limit scopes (``LimitAdmin``'s ``tier_defaults``), exactly as the rate-limit step applies
  them, so a tenant admin's own ceiling is at most the tier's and no stored limit above it can be
  granted.

Platform admins and the CLI's local operator are not held by a tenant's tier (a key scoped to a
model of a higher tier is how an upgrade is prepared).
"""

from __future__ import annotations

from inferlab.auth.model import Principal, Scopes
from inferlab.errors import PermissionDenied
from inferlab.ratelimit.grants import tier_limit_defaults
from inferlab.ratelimit.policy import Overrides
from inferlab.tenants.directory import TenantDirectory


class TierCeiling:
    def __init__(self, directory: TenantDirectory) -> None:
        self._directory = directory

    async def check_key(self, actor: Principal, tenant_id: str, scopes: Scopes) -> None:
        """Refuse a key whose explicit models fall outside the tier of the tenant it is for."""
        if actor.source == "local" or actor.role == "platform-admin" or scopes.models is None:
            return
        tier = (await self._directory.context(tenant_id)).tier
        outside = sorted(model for model in scopes.models if not tier.allows_model(model))
        if outside:
            raise PermissionDenied(f"The {tier.name} tier does not include the model(s) {', '.join(outside)}",
                                   code="model_not_in_tier", param="models")

    async def limit_defaults(self, tenant_id: str) -> dict[str, Overrides]:
        """The tier's limits of the tenant and of its keys, as stored-limit scope defaults."""
        spec = (await self._directory.context(tenant_id)).tier.spec
        return tier_limit_defaults(spec.tenant_limits, spec.key_limits)
