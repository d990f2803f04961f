"""The price book: versions by effective instant, tier over model, exact decimals from YAML."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml
from pydantic import ValidationError

from inferlab.config import PricingSettings
from inferlab.metering.pricebook import BEGINNING, PriceBook, Rates
from inferlab.ratelimit.policy import Pricing

BOOK = yaml.safe_load("""
default: {input_per_million: 0.1, output_per_million: 0.3}
models:
  qwen: {input_per_million: 0.2, output_per_million: 0.6, cached_per_million: 0.05,
         batch_input_per_million: 0.1, batch_output_per_million: 0.3}
tiers:
  free: {"*": {input_per_million: 0, output_per_million: 0}}
  pro: {qwen: {input_per_million: 0.15, output_per_million: 0.45}}
versions:
  - effective: 2027-01-01T00:00:00Z
    models: {qwen: {input_per_million: 0.25, output_per_million: 0.75}}
  - effective: 2026-07-01T00:00:00+02:00
    default: {input_per_million: 0.12, output_per_million: 0.36}
    tiers: {pro: {llama: {input_per_million: 1, output_per_million: 2}}}
""")
BEFORE = datetime(2026, 3, 1, tzinfo=UTC)
SUMMER = datetime(2026, 8, 1, tzinfo=UTC)
NEXT_YEAR = datetime(2027, 2, 1, tzinfo=UTC)


@pytest.fixture
def book() -> PriceBook:
    return PriceBook(PricingSettings.model_validate(BOOK))


def test_yaml_numbers_are_exact_decimals(book: PriceBook) -> None:
    price = book.price("qwen", at=BEFORE)
    assert price.input_per_million == Decimal("0.2") and isinstance(price.input_per_million, Decimal)
    assert str(price.output_per_million) == "0.6"


def test_a_tier_overrides_the_model_and_a_tier_star_covers_every_model(book: PriceBook) -> None:
    assert book.price("qwen", "pro", BEFORE).input_per_million == Decimal("0.15")
    assert book.price("qwen", "free", BEFORE).input_per_million == 0
    assert book.price("anything", "free", BEFORE).output_per_million == 0
    assert book.price("qwen", "enterprise", BEFORE).input_per_million == Decimal("0.2")  # no tier entry
    assert book.price("other", None, BEFORE).input_per_million == Decimal("0.1")  # the default


def test_versions_take_effect_at_their_instant_and_carry_the_rest_over(book: PriceBook) -> None:
    assert book.versions() == [BEGINNING, datetime(2026, 6, 30, 22, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]
    assert book.price("other", at=datetime(2026, 6, 30, 21, 59, 59, tzinfo=UTC)).input_per_million == Decimal("0.1")
    assert book.price("other", at=datetime(2026, 6, 30, 22, tzinfo=UTC)).input_per_million == Decimal("0.12")
    assert book.price("qwen", at=SUMMER).input_per_million == Decimal("0.2")  # carried over
    assert book.price("llama", "pro", SUMMER).input_per_million == 1
    assert book.price("qwen", "pro", SUMMER).input_per_million == Decimal("0.15")  # pro's qwen carried over
    assert book.price("qwen", at=NEXT_YEAR).input_per_million == Decimal("0.25")
    assert book.price("other", at=NEXT_YEAR).input_per_million == Decimal("0.12")
    assert book.price("qwen", "pro", NEXT_YEAR).input_per_million == Decimal("0.15")  # the tier still wins


def test_rates_cached_batch_and_rounding(book: PriceBook) -> None:
    rates = book.rates("qwen", at=BEFORE)
    assert rates == Rates(Decimal("0.2"), Decimal("0.6"), Decimal("0.05"))
    # 1,000 prompt tokens of which 400 cached, 500 completion: (600×0.2 + 400×0.05 + 500×0.6) / 10⁶
    assert rates.cost(1000, 500, 400) == Decimal("0.000440000")
    assert book.rates("qwen", at=BEFORE, batch=True) == Rates(Decimal("0.1"), Decimal("0.3"), Decimal("0.05"))
    assert book.rates("other", at=BEFORE).cached == Decimal("0.1")  # no cached price: the input price
    # rounded half-even to a nano-dollar: 1.5 → 2, 2.5 → 2, 3.5 → 4
    assert Rates(Decimal("0.0015"), Decimal(0), Decimal(0)).cost(1, 0) == Decimal("0.000000002")
    assert Rates(Decimal("0.0025"), Decimal(0), Decimal(0)).cost(1, 0) == Decimal("0.000000002")
    assert Rates(Decimal(0), Decimal("0.0035"), Decimal(0)).cost(0, 1) == Decimal("0.000000004")


def test_the_limiter_counts_spend_from_the_book_in_force_now() -> None:
    settings = PricingSettings.model_validate({"models": {"m": {"input_per_million": 0.1, "output_per_million": 0.3}},
                                               "versions": [{"effective": "2000-01-01T00:00:00Z",
                                                             "models": {"m": {"input_per_million": 10,
                                                                              "output_per_million": 30}}}]})
    assert Pricing(settings).micro_usd("m", 3, 1) == 60
    assert Pricing(PricingSettings.model_validate({"default": {"input_per_million": 0.1}})).micro_usd("x", 1, 0) == 1


@pytest.mark.parametrize("bad", [
    {"versions": [{"effective": "2027-01-01T00:00:00"}]},  # naive
    {"versions": [{"effective": "2027-01-01T00:00:00Z"}, {"effective": "2027-01-01T01:00:00+01:00"}]},  # same instant
    {"default": {"input_per_million": -1}},
    {"hardware": {"interval_s": 7}},  # does not divide an hour
    {"hardware": {"usd_per_hour": {"r": -1}}},
])
def test_invalid_books_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PricingSettings.model_validate(bad)
