"""The price book: list prices by (model, tier, time), versioned, in ``Decimal``.

Built once from ``pricing:`` (``config/pricing.py``): each version's prices are merged over the
version before it, so a lookup is a binary search over the effective instants and four dict
lookups: ``tiers[tier][model]``, ``tiers[tier]["*"]``, ``models[model]``, ``default``.

A request's list price is ``Σ tokens × rate / 10⁶`` rounded half-even to ``QUANTUM`` (a
nano-dollar), the ledger's unit of account: prompt tokens served from the engine's cache at the
cached rate, the rest of the prompt at the input rate, completion tokens at the output rate (the
batch rates for batch requests).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from inferlab.config.pricing import ANY_MODEL, Price, PricingSettings

QUANTUM = Decimal("1e-9")  # USD: the ledger's unit (a nano-dollar); stored as Numeric(20, 9)
MILLION = Decimal(1_000_000)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens, every field resolved (no ``None``)."""

    input: Decimal
    output: Decimal
    cached: Decimal

    @classmethod
    def of(cls, price: Price, *, batch: bool = False) -> Rates:
        if batch:
            input_rate = price.batch_input_per_million if price.batch_input_per_million is not None \
                else price.input_per_million
            output = price.batch_output_per_million if price.batch_output_per_million is not None \
                else price.output_per_million
        else:
            input_rate, output = price.input_per_million, price.output_per_million
        cached = price.cached_per_million if price.cached_per_million is not None else price.input_per_million
        return cls(input_rate, output, cached)

    def cost(self, prompt: int, completion: int, cached: int = 0) -> Decimal:
        """USD for these tokens, rounded to ``QUANTUM``; ``cached`` is part of ``prompt``."""
        cached = min(max(cached, 0), prompt)
        total = (prompt - cached) * self.input + cached * self.cached + completion * self.output
        return (total / MILLION).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class _Book:
    default: Price
    models: Mapping[str, Price]
    tiers: Mapping[str, Mapping[str, Price]]

    def price(self, model: str, tier: str | None) -> Price:
        if tier is not None and (own := self.tiers.get(tier)) is not None:
            found = own.get(model) or own.get(ANY_MODEL)
            if found is not None:
                return found
        return self.models.get(model, self.default)


class PriceBook:
    """``price(model, tier, at)``: the price in force at ``at`` (UTC; default: now)."""

    def __init__(self, settings: PricingSettings) -> None:
        book = _Book(settings.default, dict(settings.models), {t: dict(p) for t, p in settings.tiers.items()})
        self._starts: list[datetime] = [BEGINNING]
        self._books: list[_Book] = [book]
        self._rates: dict[tuple[int, str, str | None, bool], Rates] = {}
        for version in settings.versions:
            tiers = {tier: dict(prices) for tier, prices in book.tiers.items()}
            for tier, prices in version.tiers.items():
                tiers[tier] = {**tiers.get(tier, {}), **prices}
            book = _Book(version.default or book.default, {**book.models, **version.models}, tiers)
            if version.effective <= self._starts[-1]:
                self._books[-1] = book  # effective at or before the beginning: replaces the first book
            else:
                self._starts.append(version.effective)
                self._books.append(book)

    def _version(self, at: datetime | None) -> int:
        return max(bisect.bisect_right(self._starts, at or datetime.now(UTC)) - 1, 0)

    def price(self, model: str, tier: str | None = None, at: datetime | None = None) -> Price:
        return self._books[self._version(at)].price(model, tier)

    def rates(self, model: str, tier: str | None = None, at: datetime | None = None, *, batch: bool = False) -> Rates:
        key = (self._version(at), model, tier, batch)
        found = self._rates.get(key)
        if found is None:  # one entry per (version, model, tier, batch) seen: bounded by the configuration
            found = self._rates[key] = Rates.of(self._books[key[0]].price(model, tier), batch=batch)
        return found

    def versions(self) -> list[datetime]:
        """The effective instants, oldest first (the first is the beginning of time)."""
        return list(self._starts)
