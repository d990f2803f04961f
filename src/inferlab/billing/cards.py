"""A tenant's payment method: the card on file (as the provider describes it, never its number) and
replacing it — one path for the admin API (``POST /admin/billing/accounts/<tenant>/payment-method``)
and the customer portal's form, so both do the same thing: the provider's customer made once, the
payment method (an id the provider's own client-side flow created, e.g. Stripe's ``pm_...``)
attached as the default for invoices, then the collector told (an invoice in dunning is retried).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from inferlab.billing.dunning import Collector
from inferlab.billing.engine import BillingEngine
from inferlab.billing.protocol import Account
from inferlab.billing.provider import CardOnFile, PaymentProvider
from inferlab.errors import InvalidRequest

PAYMENT_METHOD = re.compile(r"^[A-Za-z0-9_]{3,128}$")


class PaymentMethods:
    def __init__(self, engine: BillingEngine, provider: PaymentProvider, collector: Collector) -> None:
        self._engine = engine
        self._provider = provider
        self._collector = collector

    @property
    def provider_name(self) -> str:
        return self._provider.name

    async def on_file(self, tenant: str) -> CardOnFile | None:
        """The tenant's default card (one read of the account, one call to the provider); None: none."""
        account = await self._engine.account(tenant)
        if account.provider_customer is None:
            return None
        return await self._provider.default_card(account.provider_customer)

    async def replace(self, tenant: str, payment_method: str) -> Account:
        """Make ``payment_method`` the tenant's default; its account (with the provider's customer)."""
        if not PAYMENT_METHOD.match(payment_method):
            raise InvalidRequest("payment_method is the provider's payment method id (e.g. pm_...): 3 to 128 "
                                 "letters, digits or '_'", param="payment_method", code="invalid_value")
        await self._engine.check_tenant(tenant)
        account = await self._engine.account(tenant)
        customer = await self._provider.ensure_customer(account)
        if customer is None:
            raise InvalidRequest("No payment provider is configured", code="no_payment_provider")
        if customer != account.provider_customer:
            account = await self._engine.set_account(tenant, provider_customer=customer)
        await self._provider.attach_payment_method(customer, payment_method)
        await self._collector.card_changed(tenant, datetime.now(UTC))
        return account
