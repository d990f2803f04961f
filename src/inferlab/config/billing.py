"""``billing:``: plans, billing periods, dunning and the payment provider (``inferlab.billing``).

Money is ``Decimal`` (read from its decimal text, never a float). A plan is versioned like the
price book: each entry of ``plans.<name>`` is in force from its ``effective`` instant on (the first
from the beginning of time), and what a version leaves out carries over from the version before it.
Token prices default to the price book's (``pricing:``, the tenant's tier, the instant); a plan may
override them per model and direction, or price all tokens by graduated or volume tiers instead.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from inferlab.config.base import StrictModel

Direction = Literal["input", "cached", "output"]


class Band(StrictModel):
    """One tier of a tiered plan: tokens up to ``up_to`` (cumulative; null: no end)."""

    up_to: int | None = Field(None, gt=0, description="the band's last token (cumulative); null: unbounded")
    per_million: Decimal = Field(Decimal(0), ge=0, description="USD per million tokens in this band")
    flat: Decimal = Field(Decimal(0), ge=0, description="USD once when usage reaches this band")


class TokenTiers(StrictModel):
    """All tokens of the period (every model and direction) priced by bands."""

    mode: Literal["graduated", "volume"] = Field(
        "graduated", description="graduated: each band's tokens at its price; volume: every token at the price of "
                                 "the band the period's total falls in")
    bands: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> TokenTiers:
        bounds = [b.up_to for b in self.bands]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last band may be unbounded (up_to: null)")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError("bands' up_to must increase")
        return self


class PlanVersion(StrictModel):
    """A plan from ``effective`` on; fields left unset carry over from the version before."""

    effective: datetime | None = Field(None, description="ISO 8601 with a zone; the first version: null (always)")
    flat_fee: Decimal | None = Field(None, ge=0, description="USD per period")
    minimum: Decimal | None = Field(None, ge=0, description="USD: usage below this is charged up to it")
    included_tokens: int | None = Field(None, ge=0, description="tokens per period free of charge")
    prices: dict[str, dict[Direction, Decimal]] | None = Field(
        None, description='model (or "*") → direction → USD per million tokens; default: the price book')
    tiers: TokenTiers | None = None

    @field_validator("effective")
    @classmethod
    def _aware(cls, effective: datetime | None) -> datetime | None:
        if effective is not None and effective.tzinfo is None:
            raise ValueError("effective needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return effective


class DunningSettings(StrictModel):
    retry_hours: list[float] = Field(default_factory=lambda: [24.0, 72.0, 120.0],
                                     description="hours after finalisation of each payment attempt after the first")
    suspend_after_attempts: int = Field(3, ge=1, description="failed attempts before the tenant may be suspended")
    grace_days: float = Field(7.0, ge=0, description="days past finalisation before an unpaid invoice suspends")
    notice_url: SecretStr | None = Field(None, description="a webhook POSTed a JSON notice on each dunning step")


class StripeSettings(StrictModel):
    api_key: SecretStr | None = None
    api_base: str | None = Field(None, description="e.g. a local Stripe double for tests; null: Stripe's")
    webhook_secrets: list[SecretStr] = Field(default_factory=list, max_length=2,
                                             description="one or two (during rotation) signing secrets")
    tolerance_s: int = Field(300, ge=1, description="a signed webhook older than this is refused")
    max_network_retries: int = Field(2, ge=0)


class BillingSettings(StrictModel):
    enabled: bool = False
    currency: str = Field("usd", pattern=r"^[a-z]{3}$")
    default_plan: str = "payg"
    tier_plans: dict[str, str] = Field(default_factory=dict, description="tier → plan for tenants without one")
    plans: dict[str, list[PlanVersion]] = Field(
        default_factory=lambda: {"payg": [PlanVersion()]},
        description="plan → its versions, oldest first (the first has no effective instant)")
    timezone: str = Field("UTC", description="tenants' default time zone for their periods (IANA name)")
    grace_hours: float = Field(72.0, ge=0, description="late usage within this after a period's end goes on its "
                                                       "draft; later, as an adjustment on the next invoice")
    adjustment_lookback: int = Field(3, ge=0, description="finalized periods re-rated for late usage")
    interval_s: float = Field(300.0, gt=0, description="how often the billing jobs run")
    reconcile_interval_s: float = Field(86400.0, gt=0, description="how often the reconciliation job compares "
                                                                    "our invoices with the provider's")
    jobs: bool = Field(True, description="run the billing jobs (close periods, collect, webhooks) in this process; "
                                         "false: `inferlab billing close|collect` runs them")
    provider: Literal["none", "stripe"] = "none"
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    dunning: DunningSettings = Field(default_factory=DunningSettings)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone

    @model_validator(mode="after")
    def _plans(self) -> BillingSettings:
        for name, versions in self.plans.items():
            if not versions:
                raise ValueError(f"plan {name!r} has no version")
            if versions[0].effective is not None:
                raise ValueError(f"plan {name!r}: the first version has no effective instant")
            instants = [v.effective for v in versions[1:]]
            if any(i is None for i in instants) or instants != sorted(instants):  # type: ignore[type-var]
                raise ValueError(f"plan {name!r}: later versions need increasing effective instants")
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not in plans")
        for tier, plan in self.tier_plans.items():
            if plan not in self.plans:
                raise ValueError(f"tier_plans.{tier}: no plan {plan!r}")
        if self.provider == "stripe" and self.stripe.api_key is None:
            raise ValueError("provider stripe needs stripe.api_key")
        return self
