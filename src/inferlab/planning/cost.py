"""Money: cost per 1M tokens and per request, owned vs rented TCO, break-even.

Owned hardware costs ``purchase / (years x 12)`` a month whether used or not, plus energy
(``power x utilisation x PUE x price``) and colocation (``kW x $/kW-month``).

Rented hardware (GPU hours, TPU chip-hours) is costed with the hours actually paid: a box rented
to serve is up 24 h a day, busy or not, so it is paid every hour of the month; one stopped
outside ``hours_per_day`` pays one session a day, rounded up to the provider's billing increment
and minimum (:class:`~inferlab.planning.specs.BillingTerms`); a commitment or reservation pays
every hour of its term; only serverless offers that scale to zero pay busy time alone. Busy time
(``utilisation``) can never exceed the time the box runs.

Break-even utilisation is where owning costs the same as renting only the busy hours (the box
stopped the rest of each day, billed in the provider's increments); break-even months is when the
purchase has been paid back by the rent it saves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.specs import BillingTerms, SourceRef

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
Setting = Literal["home", "datacenter"]

#: per-second billing without a minimum: what "paid by the busy hour" means when no terms are given
PER_SECOND = BillingTerms(SourceRef("per-second billing, no minimum", "2026-11", "E"), increment_s=1.0)


@dataclass(frozen=True)
class RentalPlan:
    """How a rented box runs: all devices' hourly price, the provider's terms, hours up each day."""

    usd_per_hour: float
    billing: BillingTerms = field(default=PER_SECOND)
    hours_per_day: float = 24.0  # the box runs this long each day, then is stopped (24: never stopped)
    reserved: bool = False  # a reservation bought for the month: every hour is paid

    def paid_hours(self, utilisation: float) -> float:
        """Hours paid a month when the box is busy ``utilisation`` of the month."""
        check_fraction(utilisation, "utilisation")
        if not 0 < self.hours_per_day <= 24:
            raise InvalidRequest(f"hours_per_day must be in (0, 24], got {self.hours_per_day}", param="hours_per_day")
        if self.reserved or self.billing.committed:
            return HOURS_PER_MONTH
        if self.billing.scale_to_zero:
            return HOURS_PER_MONTH * utilisation
        if utilisation > self.hours_per_day / 24 + 1e-9:
            raise InvalidRequest(
                f"utilisation {utilisation:.0%} is more than the box runs ({self.hours_per_day:g} h a day ="
                f" {self.hours_per_day / 24:.0%}); raise hours_per_day or lower utilisation",
                param="utilisation",
            )
        if self.hours_per_day >= 24:
            return HOURS_PER_MONTH
        return DAYS_PER_MONTH * self.billing.billed_hours(self.hours_per_day)


@dataclass(frozen=True)
class OwnedCosts:
    purchase_usd: float
    amortisation_years: float
    power_w: float  # draw at full load, all devices
    pue: float
    electricity_usd_per_kwh: float
    colo_usd_per_kw_month: float = 0.0
    other_usd_per_month: float = 0.0


@dataclass(frozen=True)
class MonthlyCost:
    capital: float
    energy: float
    colocation: float
    rent: float
    other: float

    @property
    def total(self) -> float:
        return self.capital + self.energy + self.colocation + self.rent + self.other


@dataclass(frozen=True)
class TcoComparison:
    deployment: str
    utilisation: float
    output_tokens_per_s: float
    owned: MonthlyCost | None
    rented: MonthlyCost | None
    rent_usd_per_hour: float | None  # all devices
    rented_hours_per_month: float | None  # hours paid, not hours busy
    owned_usd_per_mtok: float | None
    rented_usd_per_mtok: float | None
    breakeven_utilisation: float | None
    breakeven_months: float | None
    assumptions: tuple[str, ...]


def check_fraction(value: float, name: str) -> None:
    if not 0 < value <= 1:
        raise InvalidRequest(f"{name} must be in (0, 1], got {value}", param=name)


def owned_monthly(o: OwnedCosts, utilisation: float) -> MonthlyCost:
    check_fraction(utilisation, "utilisation")
    kwh = o.power_w / 1000 * HOURS_PER_MONTH * utilisation * o.pue
    return MonthlyCost(
        capital=o.purchase_usd / (o.amortisation_years * 12),
        energy=kwh * o.electricity_usd_per_kwh,
        colocation=o.power_w / 1000 * o.colo_usd_per_kw_month,
        rent=0.0,
        other=o.other_usd_per_month,
    )


def rented_monthly(plan: RentalPlan, utilisation: float) -> MonthlyCost:
    """A month of rent: the plan's hourly price times the hours it pays (see :class:`RentalPlan`)."""
    return MonthlyCost(capital=0.0, energy=0.0, colocation=0.0, rent=plan.usd_per_hour * plan.paid_hours(utilisation),
                       other=0.0)


def usd_per_million_tokens(monthly_usd: float, tokens_per_s: float, utilisation: float) -> float:
    """What a million tokens cost when ``tokens_per_s`` flow for ``utilisation`` of the month."""
    if tokens_per_s <= 0:
        raise InvalidRequest("tokens_per_s must be positive", param="tokens_per_s")
    check_fraction(utilisation, "utilisation")
    return monthly_usd / (tokens_per_s * 3600 * HOURS_PER_MONTH * utilisation) * 1e6


def usd_per_request(usd_per_mtok_output: float, output_tokens: int) -> float:
    """Cost of one request when the throughput figure already includes its prefill time."""
    return usd_per_mtok_output * output_tokens / 1e6


def breakeven_utilisation(o: OwnedCosts, rent_usd_per_hour: float, billing: BillingTerms = PER_SECOND) -> float | None:
    """Utilisation above which owning is cheaper than renting only the busy hours, the box stopped
    the rest of each day and billed in the provider's increments (None: never, up to 100 %)."""
    if billing.committed:
        return None  # a commitment is paid whatever the utilisation: compare monthly totals instead
    for step in range(1, 1001):
        u = step / 1000
        hours = HOURS_PER_MONTH * u if billing.scale_to_zero else DAYS_PER_MONTH * billing.billed_hours(24 * u)
        if owned_monthly(o, u).total <= rent_usd_per_hour * min(hours, HOURS_PER_MONTH):
            return u
    return None


def breakeven_months(purchase_usd: float, rent_monthly: float, owned_opex_monthly: float) -> float | None:
    """Months until the purchase is paid back by the rent it saves (None: never)."""
    saving = rent_monthly - owned_opex_monthly
    return purchase_usd / saving if saving > 0 else None


def default_owned_costs(catalogue: Catalogue, d: Deployment, setting: Setting) -> OwnedCosts | None:
    """Purchase, power and site costs from the catalogue (None when no purchase price is known)."""
    acc = d.accelerator
    if acc.purchase is None or acc.tdp_w is None:
        return None
    datacenter = setting == "datacenter"
    purchase, power_w = acc.purchase.usd * d.devices, acc.tdp_w * d.devices
    if d.devices == 8 and acc.node8_purchase is not None:  # a whole server: chassis, CPUs, network
        purchase, power_w = acc.node8_purchase.usd, (acc.node8_max_kw or power_w / 1000) * 1000
    years_key = "datacenter" if acc.efficiency_class.startswith("datacenter") else "consumer"
    return OwnedCosts(
        purchase_usd=purchase,
        amortisation_years=catalogue.economic(f"amortisation_years.{years_key}"),
        power_w=power_w,
        pue=catalogue.economic(f"pue.{'datacenter' if datacenter else 'home'}"),
        electricity_usd_per_kwh=catalogue.economic(f"electricity_usd_per_kwh.{setting}"),
        colo_usd_per_kw_month=catalogue.economic("colo_usd_per_kw_month") if datacenter else 0.0,
    )


def compare_tco(
    catalogue: Catalogue,
    d: Deployment,
    output_tokens_per_s: float,
    *,
    utilisation: float = 0.5,
    setting: Setting = "datacenter",
    owned: OwnedCosts | None = None,
    rent_usd_per_hour: float | None = None,
    reserved: bool = False,
    hours_per_day: float = 24.0,
    billing: BillingTerms | None = None,
) -> TcoComparison:
    """Owned vs rented for one deployment at a throughput (tokens/s while busy).

    ``rent_usd_per_hour`` (all devices) defaults to the catalogue's on-demand price, with that
    provider's billing terms; a price given without ``billing`` is assumed billed in whole hours.
    """
    check_fraction(utilisation, "utilisation")
    owned = owned or default_owned_costs(catalogue, d, setting)
    assumptions: list[str] = []
    price = None
    if rent_usd_per_hour is None:
        price = d.accelerator.rental()
        if price is not None:
            rent_usd_per_hour = price.usd_per_hour * d.devices
            assumptions.append(f"rent {price.usd_per_hour:.2f} $/h per device ({price.provider} {price.tier}, {price.ref.date})")
    plan = None
    if rent_usd_per_hour:
        plan = RentalPlan(rent_usd_per_hour, billing or catalogue.billing_for(price), hours_per_day, reserved)
        assumptions.append(_rental_assumption(plan))
    if owned is not None:
        assumptions.append(
            f"purchase ${owned.purchase_usd:,.0f} over {owned.amortisation_years:g} y, {owned.power_w:.0f} W x PUE {owned.pue}"
            f" at ${owned.electricity_usd_per_kwh}/kWh, colo ${owned.colo_usd_per_kw_month:.0f}/kW-month"
        )
    own_month = owned_monthly(owned, utilisation) if owned else None
    rent_month = rented_monthly(plan, utilisation) if plan else None
    return TcoComparison(
        deployment=d.label(),
        utilisation=utilisation,
        output_tokens_per_s=output_tokens_per_s,
        owned=own_month,
        rented=rent_month,
        rent_usd_per_hour=rent_usd_per_hour,
        rented_hours_per_month=plan.paid_hours(utilisation) if plan else None,
        owned_usd_per_mtok=usd_per_million_tokens(own_month.total, output_tokens_per_s, utilisation) if own_month else None,
        rented_usd_per_mtok=usd_per_million_tokens(rent_month.total, output_tokens_per_s, utilisation) if rent_month else None,
        breakeven_utilisation=breakeven_utilisation(owned, plan.usd_per_hour, plan.billing) if owned and plan else None,
        breakeven_months=(
            breakeven_months(owned.purchase_usd, rent_month.total, own_month.total - own_month.capital)
            if owned and own_month and rent_month
            else None
        ),
        assumptions=tuple(assumptions),
    )


def _rental_assumption(plan: RentalPlan) -> str:
    terms = plan.billing
    if plan.reserved or terms.committed:
        running = "reserved: every hour of the month is paid"
    elif terms.scale_to_zero:
        running = "scales to zero: busy time only is paid"
    elif plan.hours_per_day >= 24:
        running = "up 24 h a day: every hour is paid, busy or not"
    else:
        running = (f"up {plan.hours_per_day:g} h a day, each day's session billed as"
                   f" {terms.billed_hours(plan.hours_per_day):g} h")
    return (f"rented box {running}; billing in {terms.increment_s:g} s increments, minimum {terms.minimum_s:g} s"
            f" ({terms.ref.source}, {terms.ref.date})")
