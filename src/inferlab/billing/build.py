"""The billing part of the composition root (called by ``services.py`` when ``billing.enabled``).

Builds the engine over the store's database and metering's price book, the payment provider
(``billing.provider``: ``none``, or ``stripe`` — the SDK imported only then), the collector
(payments and dunning, suspending and resuming tenants through the tenants' manager, audited)
and the webhook inbox; with ``jobs`` it registers three background services on the lifecycle:
closing periods, collecting, and processing stored webhook events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from inferlab.auth.model import ALL_SCOPES, DEFAULT_TENANT, Principal
from inferlab.billing.cards import PaymentMethods
from inferlab.billing.dunning import Collector, LogNotifier, Notifier, WebhookNotifier
from inferlab.billing.engine import BillingEngine, TierOf
from inferlab.billing.provider import NullProvider, PaymentProvider
from inferlab.billing.reconcile import Reconciler
from inferlab.billing.webhooks import WebhookInbox
from inferlab.config import Settings
from inferlab.errors import NotFound
from inferlab.lifecycle import Lifecycle
from inferlab.metering.pricebook import PriceBook
from inferlab.store.engine import Database

BILLING_ACTOR = Principal(DEFAULT_TENANT, "billing", "platform-admin", ALL_SCOPES, source="local")
"""Who suspends and resumes tenants for billing (the audit log's actor)."""


@dataclass
class BillingServices:
    engine: BillingEngine
    provider: PaymentProvider
    collector: Collector
    inbox: WebhookInbox
    reconciler: Reconciler
    cards: PaymentMethods  # the card on file and replacing it (the admin API's and the portal's)


def payment_provider(settings: Settings) -> PaymentProvider:
    config = settings.billing
    if config.provider == "stripe":
        from inferlab.billing.stripe_provider import StripeProvider

        return StripeProvider(config.stripe, config.currency)
    return NullProvider()


def build_billing(settings: Settings, database: Database, book: PriceBook, *, session: Any | None,
                  lifecycle: Lifecycle | None, tenant_admin: Any | None, directory: Any | None,
                  logger: logging.Logger, provider: PaymentProvider | None = None,
                  jobs: bool = True) -> BillingServices:
    from inferlab.store.billing import SqlBillingStore
    from inferlab.store.billing_usage import SqlBillingUsage

    config = settings.billing
    tier_of: TierOf | None = None
    exists = None
    if tenant_admin is not None:
        async def tenant_exists(tenant: str) -> bool:
            try:
                await tenant_admin.get(BILLING_ACTOR, tenant)
            except NotFound:
                return False
            return True

        exists = tenant_exists
    if directory is not None:
        async def tier_of_tenant(tenant: str) -> str | None:
            return str((await directory.context(tenant)).tier.name)

        tier_of = tier_of_tenant
    engine = BillingEngine(config, SqlBillingStore(database), SqlBillingUsage(database), book, tier_of=tier_of,
                           exists=exists, logger=logger)
    provider = provider or payment_provider(settings)

    async def suspend(tenant: str) -> None:
        if tenant_admin is None:
            logger.warning("billing would suspend this tenant, but tenants are not managed here (features.auth)",
                           extra={"tenant": tenant})
            return
        await tenant_admin.set_status(BILLING_ACTOR, tenant, "suspended")

    async def resume(tenant: str) -> None:
        if tenant_admin is not None:
            await tenant_admin.set_status(BILLING_ACTOR, tenant, "active")

    notifier: Notifier = LogNotifier(logger)
    if config.dunning.notice_url is not None and session is not None:
        notifier = WebhookNotifier(session, config.dunning.notice_url.get_secret_value(), logger)
    collector = Collector(engine, provider, config.dunning, suspend=suspend, resume=resume, notifier=notifier,
                          logger=logger.getChild("dunning"))
    inbox = WebhookInbox(engine.store, collector, [s.get_secret_value() for s in config.stripe.webhook_secrets],
                         tolerance_s=config.stripe.tolerance_s, logger=logger.getChild("webhooks"))
    reconciler = Reconciler(engine, provider)
    if jobs and config.jobs and lifecycle is not None:
        interval = config.interval_s

        async def close_periods() -> None:
            import asyncio

            while True:
                try:
                    await engine.refresh_plans()
                    await engine.close_due()
                except Exception:
                    logger.exception("closing billing periods failed")
                await asyncio.sleep(interval)

        async def reconcile() -> None:
            import asyncio

            while True:
                await asyncio.sleep(config.reconcile_interval_s)
                try:
                    found = await reconciler.reconcile()
                except Exception:
                    logger.exception("billing reconciliation failed")
                    continue
                for difference in found:
                    logger.warning("billing reconciliation: a difference with the payment provider",
                                   extra=difference.as_json())
                if not found:
                    logger.info("billing reconciliation: no difference")

        lifecycle.background(close_periods)
        if config.provider != "none":
            lifecycle.background(reconcile)
        lifecycle.background(lambda: collector.run(interval))
        lifecycle.background(lambda: inbox.run(interval))
    return BillingServices(engine, provider, collector, inbox, reconciler, PaymentMethods(engine, provider, collector))
