"""The usage ledger's read side and costs, built from settings (called by ``services.py``; the
write side — step, outbox, shipper — is ``metering/build.py``).

``cost_tracker`` prices events from ``pricing:`` and the planning catalogue (the metering step
calls its ``priced``); ``analytics_sink`` is ClickHouse when ``usage.analytics.backend`` names it
(imported lazily: chDB only when configured), fed by the shipper; ``build_usage`` picks the
reports' analytics and registers the budget alerts and the hardware cost job on the Lifecycle.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from inferlab.config import Settings
from inferlab.lifecycle import Lifecycle
from inferlab.metering.alerts import BudgetAlerts, BudgetOf, WebhookSender
from inferlab.metering.analytics import UsageAnalytics
from inferlab.metering.cost import CostTracker, HardwareRates
from inferlab.metering.costing import HardwareCostJob
from inferlab.metering.forecast import Forecaster
from inferlab.metering.pricebook import PriceBook
from inferlab.metering.sink import UsageSink
from inferlab.store.engine import Database


@dataclass
class UsageServices:
    analytics: UsageAnalytics
    forecaster: Forecaster
    costs: CostTracker
    sink: UsageSink | None  # ClickHouse, for the shipper; None when the store is the analytics
    alerts: BudgetAlerts | None
    costing: HardwareCostJob | None  # attributes hardware cost to the stored events (a database)


def catalogue_rental(logger: logging.Logger) -> Any:
    """accelerator id → its on-demand rental price per device-hour (USD), from the planning catalogue
    (loaded on first use)."""
    found: dict[str, Decimal | None] = {}

    def rental(accelerator: str) -> Decimal | None:
        if accelerator not in found:
            from inferlab.errors import InferLabError
            from inferlab.planning.catalogue import load_catalogue

            try:
                price = load_catalogue().accelerator(accelerator).rental()
                found[accelerator] = Decimal(str(price.usd_per_hour)) if price is not None else None
            except InferLabError:
                found[accelerator] = None
            if found[accelerator] is None:
                logger.warning("no hourly cost for this hardware: its replicas cost nothing",
                               extra={"hardware": accelerator})
        return found[accelerator]

    return rental


def cost_tracker(settings: Settings, logger: logging.Logger) -> CostTracker:
    hardware = settings.pricing.hardware
    return CostTracker(PriceBook(settings.pricing), HardwareRates(hardware, catalogue_rental(logger)),
                       interval_s=hardware.interval_s)


def hardware_of(settings: Settings) -> Callable[[str, str], str | None]:
    """(replica, model) → the hardware named for it in ``pricing.hardware.accelerators`` (the event's
    ``hardware``)."""
    accelerators = settings.pricing.hardware.accelerators
    return lambda replica, model: accelerators.get(replica) or accelerators.get(model)


def analytics_sink(settings: Settings, session: Any, lifecycle: Lifecycle) -> Any | None:
    """ClickHouse (a server or chDB) when it answers the reports: the sink the shipper feeds, its
    tables created at start (before the shipper ships); None for the store backend."""
    config = settings.usage.analytics
    if config.backend == "store":
        return None
    from inferlab.metering.clickhouse import ChdbClickHouse, ClickHouseUsage, HttpClickHouse

    if config.backend == "clickhouse":
        assert config.clickhouse_url is not None
        client: Any = HttpClickHouse(config.clickhouse_url.get_secret_value(), session)
    else:
        client = ChdbClickHouse(config.chdb_path or str(Path(settings.data_dir).expanduser() / "chdb"))
    clickhouse = ClickHouseUsage(client, config.clickhouse_database)

    @contextlib.asynccontextmanager
    async def tables_created() -> AsyncIterator[None]:
        await clickhouse.create()  # idempotent (IF NOT EXISTS)
        yield

    lifecycle.add(tables_created)
    return clickhouse


def build_usage(settings: Settings, *, database: Database | None, session: Any, lifecycle: Lifecycle,
                logger: logging.Logger, budget_of: BudgetOf | None = None, jobs: bool = True,
                sink: Any | None = None, tracker: CostTracker | None = None) -> UsageServices | None:
    """The reports' analytics (``sink`` when ClickHouse answers them, else the store's rollups),
    the forecaster, and — with ``jobs`` (``serve``, not a CLI report) — the budget alerts and the
    hardware cost job in the background. None when there is nothing to read usage from."""
    if sink is None and settings.usage.analytics.backend != "store":
        sink = analytics_sink(settings, session, lifecycle)
    analytics: UsageAnalytics
    if sink is not None:
        analytics = sink
    elif database is not None:
        from inferlab.store.usage_analytics import SqlUsageAnalytics

        analytics = SqlUsageAnalytics(database)
    else:
        return None
    forecaster = Forecaster(analytics, history_days=settings.usage.history_days)
    alerts = None
    if jobs and settings.usage.alerts.enabled and database is not None and budget_of is not None:
        from inferlab.store.alerts import SqlAlertLedger

        alerts = BudgetAlerts(forecaster, budget_of, SqlAlertLedger(database),
                              WebhookSender(session, settings.usage.alerts), settings.usage.alerts,
                              logger.getChild("alerts"))
        lifecycle.background(alerts.run)
    tracker = tracker or cost_tracker(settings, logger)
    costing = None
    if jobs and database is not None:
        from inferlab.store.costs import SqlCostLedger

        costing = HardwareCostJob(tracker, SqlCostLedger(database), grace_s=settings.pricing.hardware.grace_s,
                                  logger=logger.getChild("costs"), sink=sink)  # ClickHouse's rollups get the costs
        lifecycle.background(costing.run)
    return UsageServices(analytics, forecaster, tracker, sink, alerts, costing)


def tenant_budgets(settings: Settings, database: Database, directory: Any) -> BudgetOf:
    """A tenant's monthly quotas as the rate limiter applies them: per field, its stored tenant limit,
    else its tier's ``tenant_limits``, else the configured ``quota.limits`` default (tenant scope)."""
    from inferlab.metering.alerts import Budget
    from inferlab.ratelimit.grants import configured_defaults
    from inferlab.store.limits import SqlLimitStore
    from inferlab.tenants.ceiling import TierCeiling

    store, ceiling = SqlLimitStore(database), TierCeiling(directory)
    configured = configured_defaults(settings.ratelimit.limits, settings.quota.limits).get("tenant")

    async def budget_of(tenant: str) -> Budget:
        stored = (await store.get_many([("tenant", tenant)])).get(("tenant", tenant))
        tier = (await ceiling.limit_defaults(tenant)).get("tenant")
        return Budget(**merged_budget(stored, tier, configured))

    return budget_of


def merged_budget(*layers: Mapping[str, Any] | Any | None) -> dict[str, float | None]:
    """Per monthly quota field, the first layer that sets it (stored, then tier, then configured)."""
    found: dict[str, float | None] = {"monthly_tokens": None, "monthly_spend_usd": None}
    for field in found:
        for layer in layers:
            value = getattr(layer, field, None) if layer is not None else None
            if value is not None:
                found[field] = float(value)
                break
    return found
