"""``pricing:``: the price book (list prices, USD per million tokens) and the hardware's hourly cost.

Money is ``Decimal``: a YAML number is read as its decimal text (``0.2`` is exactly 0.2), never
through a binary float. The book is versioned: the top level is in force from the beginning of
time, each entry of ``versions`` from its ``effective`` instant (UTC) on, and a version lists only
the prices that change — every other price carries over from the version before it.

Which price applies to a request of ``model`` on ``tier`` (``inferlab.metering.pricebook``):
``tiers.<tier>.<model>``, else ``tiers.<tier>."*"``, else ``models.<model>``, else ``default`` —
a tier's price overrides the model's list price.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from inferlab.config.base import StrictModel

ANY_MODEL = "*"  # in ``tiers.<tier>``: every model of the tier


class Price(StrictModel):
    """One model's (or tier's) rates, USD per million tokens."""

    input_per_million: Decimal = Field(Decimal(0), ge=0, description="USD per million prompt tokens")
    output_per_million: Decimal = Field(Decimal(0), ge=0, description="USD per million completion tokens")
    cached_per_million: Decimal | None = Field(
        None, ge=0, description="USD per million prompt tokens served from the engine's cache; null: the input price")
    batch_input_per_million: Decimal | None = Field(None, ge=0, description="batch requests; null: the input price")
    batch_output_per_million: Decimal | None = Field(None, ge=0, description="batch requests; null: the output price")


class PriceVersion(StrictModel):
    """Prices that change from ``effective`` on; the others carry over."""

    effective: datetime = Field(description="ISO 8601 with a time zone (UTC recommended)")
    default: Price | None = None
    models: dict[str, Price] = Field(default_factory=dict)
    tiers: dict[str, dict[str, Price]] = Field(default_factory=dict, description='tier → model (or "*") → price')

    @field_validator("effective")
    @classmethod
    def _aware(cls, effective: datetime) -> datetime:
        if effective.tzinfo is None:
            raise ValueError("effective needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return effective


class HardwareCost(StrictModel):
    """What a replica costs while it serves: the planning catalogue's rental price of its
    accelerator, or a configured hourly cost (which wins)."""

    accelerators: dict[str, str] = Field(
        default_factory=dict, description="model or replica name → the catalogue's accelerator id (e.g. h100-sxm)")
    devices: dict[str, int] = Field(default_factory=dict, description="model or replica name → devices (default 1)")
    usd_per_hour: dict[str, Decimal] = Field(
        default_factory=dict, description="model or replica name → hourly cost of one replica (wins over the catalogue)")
    interval_s: int = Field(
        60, ge=1, le=3600, description="hardware cost is attributed per replica per interval of this length")
    grace_s: int = Field(300, ge=0, description="an interval is costed this long after it ends (late events)")

    @field_validator("usd_per_hour")
    @classmethod
    def _non_negative(cls, costs: dict[str, Decimal]) -> dict[str, Decimal]:
        for name, cost in costs.items():
            if cost < 0:
                raise ValueError(f"usd_per_hour.{name} must be at least 0")
        return costs

    @model_validator(mode="after")
    def _whole_intervals(self) -> HardwareCost:
        if 3600 % self.interval_s:
            raise ValueError("interval_s must divide an hour (e.g. 60, 300, 900, 3600)")
        return self


class PricingSettings(StrictModel):
    """The price book (spend quotas and the usage ledger) and the hardware's cost."""

    default: Price = Field(default_factory=Price)
    models: dict[str, Price] = Field(default_factory=dict)
    tiers: dict[str, dict[str, Price]] = Field(default_factory=dict, description='tier → model (or "*") → price')
    versions: list[PriceVersion] = Field(default_factory=list, description="later prices, from their effective date")
    hardware: HardwareCost = Field(default_factory=HardwareCost)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, versions: list[PriceVersion]) -> list[PriceVersion]:
        instants = [v.effective for v in versions]
        if len(set(instants)) != len(instants):
            raise ValueError("two versions share an effective instant")
        return sorted(versions, key=lambda v: v.effective)

    def price(self, model: str) -> Price:
        """The first version's price of ``model`` (tiers aside); ``PriceBook`` resolves versions."""
        return self.models.get(model, self.default)
