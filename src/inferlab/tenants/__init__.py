"""Tenants and tiers: what each tenant may use (its tier, with its own overrides), whether it may
use anything now (its status), and the administration of both.

``TierCatalogue`` holds the tiers (shipped, configured, stored); ``TenantDirectory`` resolves a
tenant id to a ``TenantContext`` (status and compiled ``Tier``) from a TTL cache; ``TenantManager``
changes tenants and tiers with every policy check; ``TierCeiling`` extends the delegation ceiling
to the tier. The request step is ``inferlab.tenants.step.EnforceTier`` (assembled by the
composition root).
"""

from inferlab.tenants.ceiling import TierCeiling
from inferlab.tenants.directory import TenantContext, TenantDirectory
from inferlab.tenants.manager import TenantManager, TierView
from inferlab.tenants.tier import SHIPPED_TIERS, TIER_HEADER, Tier, TierCatalogue

__all__ = [
    "SHIPPED_TIERS", "TIER_HEADER", "TenantContext", "TenantDirectory", "TenantManager", "Tier", "TierCatalogue",
    "TierCeiling", "TierView",
]
