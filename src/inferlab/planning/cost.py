"""Money: cost per 1M tokens and per request, owned vs rented TCO, break-even.

Owned hardware costs ``purchase / (years x 12)`` a month whether used or not, plus energy
(``power x utilisation x PUE x price``) and colocation (``kW x $/kW-month``). Rented hardware
(GPU hours, TPU chip-hours) is paid for the hours it runs: on-demand for the utilised hours, or
every hour when reserved. Break-even utilisation is where both cost the same a month; break-even
months is when the purchase has been paid back by the rent it saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment

HOURS_PER_MONTH = 730.0
Setting = Literal["home", "datacenter"]


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


def rented_monthly(usd_per_hour: float, utilisation: float, *, reserved: bool = False) -> MonthlyCost:
    check_fraction(utilisation, "utilisation")
    hours = HOURS_PER_MONTH if reserved else HOURS_PER_MONTH * utilisation
    return MonthlyCost(capital=0.0, energy=0.0, colocation=0.0, rent=usd_per_hour * hours, other=0.0)


def usd_per_million_tokens(monthly_usd: float, tokens_per_s: float, utilisation: float) -> float:
    """What a million tokens cost when ``tokens_per_s`` flow for ``utilisation`` of the month."""
    if tokens_per_s <= 0:
        raise InvalidRequest("tokens_per_s must be positive", param="tokens_per_s")
    check_fraction(utilisation, "utilisation")
    return monthly_usd / (tokens_per_s * 3600 * HOURS_PER_MONTH * utilisation) * 1e6


def usd_per_request(usd_per_mtok_output: float, output_tokens: int) -> float:
    """Cost of one request when the throughput figure already includes its prefill time."""
    return usd_per_mtok_output * output_tokens / 1e6


def breakeven_utilisation(o: OwnedCosts, rent_usd_per_hour: float) -> float | None:
    """Utilisation above which owning is cheaper than renting on demand (None: never)."""
    energy_per_hour = o.power_w / 1000 * o.pue * o.electricity_usd_per_kwh
    margin = rent_usd_per_hour - energy_per_hour
    if margin <= 0:
        return None
    fixed = owned_monthly(o, 1.0)
    u = (fixed.capital + fixed.colocation + fixed.other) / (HOURS_PER_MONTH * margin)
    return u if u <= 1 else None


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
) -> TcoComparison:
    """Owned vs rented for one deployment at a throughput (tokens/s while busy)."""
    check_fraction(utilisation, "utilisation")
    owned = owned or default_owned_costs(catalogue, d, setting)
    assumptions: list[str] = []
    if rent_usd_per_hour is None:
        price = d.accelerator.rental()
        if price is not None:
            rent_usd_per_hour = price.usd_per_hour * d.devices
            assumptions.append(f"rent {price.usd_per_hour:.2f} $/h per device ({price.provider} {price.tier}, {price.ref.date})")
    if owned is not None:
        assumptions.append(
            f"purchase ${owned.purchase_usd:,.0f} over {owned.amortisation_years:g} y, {owned.power_w:.0f} W x PUE {owned.pue}"
            f" at ${owned.electricity_usd_per_kwh}/kWh, colo ${owned.colo_usd_per_kw_month:.0f}/kW-month"
        )
    own_month = owned_monthly(owned, utilisation) if owned else None
    rent_month = rented_monthly(rent_usd_per_hour, utilisation, reserved=reserved) if rent_usd_per_hour else None
    return TcoComparison(
        deployment=d.label(),
        utilisation=utilisation,
        output_tokens_per_s=output_tokens_per_s,
        owned=own_month,
        rented=rent_month,
        rent_usd_per_hour=rent_usd_per_hour,
        owned_usd_per_mtok=usd_per_million_tokens(own_month.total, output_tokens_per_s, utilisation) if own_month else None,
        rented_usd_per_mtok=usd_per_million_tokens(rent_month.total, output_tokens_per_s, utilisation) if rent_month else None,
        breakeven_utilisation=breakeven_utilisation(owned, rent_usd_per_hour) if owned and rent_usd_per_hour else None,
        breakeven_months=(
            breakeven_months(owned.purchase_usd, rent_month.total, own_month.total - own_month.capital)
            if owned and own_month and rent_month
            else None
        ),
        assumptions=tuple(assumptions),
    )
