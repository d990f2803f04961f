"""What the dashboards read, as the composition root hands it over: the same services the API
routes use (so a page's totals are the API's and the CSV's), and two optional providers that other
capabilities fill in when they are on — the autoscaler's decisions and the anomaly detector's
findings. A page whose source is off says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from inferlab.web.cache import CachedAnalytics

if TYPE_CHECKING:
    from inferlab.auth.admin import IdentityAdmin
    from inferlab.auth.audit import AuditLog
    from inferlab.billing.cards import PaymentMethods
    from inferlab.billing.engine import BillingEngine
    from inferlab.metering.alerts import Budget
    from inferlab.metering.analytics import UsageAnalytics
    from inferlab.metering.forecast import Forecaster
    from inferlab.registry.admin import RegistryAdmin
    from inferlab.router.pool import ModelRouter
    from inferlab.slo.tracker import SloTracker
    from inferlab.tenants.manager import TenantManager


class AutoscalerDecisions(Protocol):
    """The autoscaler's recent decisions, newest first: each a mapping with at least ``at``
    (ISO 8601), ``model``, ``action`` (scale_up, scale_down, hold), ``from``, ``to`` and ``reason``."""

    def recent_decisions(self, limit: int) -> Sequence[Mapping[str, Any]]: ...


class AnomalyFeed(Protocol):
    """The anomaly detector's recent findings, newest first: each a mapping with at least ``at``,
    ``tenant``, ``kind``, ``severity`` and ``detail``."""

    async def recent_anomalies(self, limit: int, tenant: str | None = None) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class Sources:
    identity: IdentityAdmin
    audit: AuditLog
    tenants: TenantManager
    router: ModelRouter
    pool_queue: Callable[[Any], Mapping[str, Any]]  # a pool → its wait queue's snapshot
    analytics: UsageAnalytics | None = None
    forecaster: Forecaster | None = None
    budget_of: Callable[[str], Awaitable[Budget]] | None = None
    slo: SloTracker | None = None
    registry: RegistryAdmin | None = None
    billing: BillingEngine | None = None
    autoscaler: AutoscalerDecisions | None = None
    anomalies: AnomalyFeed | None = None
    platform_usage: CachedAnalytics | None = None  # ``analytics`` for the every-tenant queries of the admin pages
    cards: PaymentMethods | None = None  # the portal's payment method (billing's, when billing is on)
