"""``pricing:``: the price book, per model, in USD per million tokens."""

from __future__ import annotations

from pydantic import Field

from inferlab.config.base import StrictModel


class Price(StrictModel):
    input_per_million: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output_per_million: float = Field(0.0, ge=0, description="USD per million completion tokens")


class PricingSettings(StrictModel):
    """The price book: spend quotas now, cost tracking later."""

    default: Price = Field(default_factory=Price)
    models: dict[str, Price] = Field(default_factory=dict)

    def price(self, model: str) -> Price:
        return self.models.get(model, self.default)
