"""Cost arithmetic over 1,000,000 random events: every list price exact to the nano-dollar
against an independent integer oracle and the total within a cent of the unrounded truth; the
hardware cost's parts summing exactly to the priced busy intervals and within a cent of busy time
× rate, busy time counted once however requests overlap. (Rollup sums = raw sums: the analytics
contract tests, against the stores themselves.)"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np

from inferlab.config import PricingSettings
from inferlab.metering.attribution import attribute_arrays
from inferlab.metering.cost import to_quanta
from inferlab.metering.pricebook import PriceBook

N = 1_000_000
MINUTE = 60_000_000
DAYS = 3
# USD per million tokens, up to 4 decimals (×10⁴: the integer oracle's units)
MODELS = {"small": ("0.0513", "0.2049", "0.0101"), "big": ("2.5", "9.9999", "1.25"), "odd": ("0.0007", "0.0013", "0")}
HOURLY = ("1.99", "3.6", "0.3333", "12.75")


def _half_even(numerator: np.ndarray, denominator: int) -> np.ndarray:
    whole, rest = np.divmod(numerator, denominator)
    return whole + ((rest * 2 > denominator) | ((rest * 2 == denominator) & (whole % 2 == 1)))


def test_a_million_list_prices_exact_to_the_nano_dollar() -> None:
    rng = np.random.default_rng(7)
    model = rng.integers(0, 3, N)
    prompt = rng.integers(0, 4000, N)
    completion = rng.integers(0, 1000, N)
    cached = (rng.random(N) * (prompt + 1)).astype(np.int64)
    book = PriceBook(PricingSettings.model_validate({
        "models": {m: {"input_per_million": i, "output_per_million": o, "cached_per_million": c}
                   for m, (i, o, c) in MODELS.items()}}))
    names = list(MODELS)
    rates = [book.rates(name, "pro") for name in names]
    prices = [rates[m].cost(p, c, k) for m, p, c, k in
              zip(model.tolist(), prompt.tolist(), completion.tolist(), cached.tolist(), strict=True)]
    as_nanos = np.array([int(price.scaleb(9)) for price in prices], dtype=np.int64)

    scaled = np.array([[int(Decimal(x) * 10_000) for x in MODELS[name]] for name in names], dtype=np.int64)[model]
    exact = (prompt - cached) * scaled[:, 0] + completion * scaled[:, 1] + cached * scaled[:, 2]  # 10⁻¹⁰ USD
    assert np.array_equal(as_nanos, _half_even(exact, 10))  # each price: the exact amount rounded half-even
    ledger = sum(prices, Decimal(0))
    truth = Fraction(int(exact.sum()), 10**10)
    assert abs(Fraction(ledger) - truth) <= Fraction(N, 2 * 10**9) < Fraction(1, 100)


def test_a_million_hardware_costs_sum_exactly_to_the_busy_time_priced() -> None:
    rng = np.random.default_rng(11)
    replica = rng.integers(0, len(HOURLY), N)
    end = rng.integers(0, DAYS * 86_400_000_000, N)
    begin = end - rng.integers(0, 30_000_000, N)  # some empty (no service): no cost
    tokens = rng.integers(0, 5000, N) * (rng.random(N) > 0.05)  # some without tokens
    ids = [f"req-{i:07d}" for i in range(N)]
    total = 0
    for index, hourly in enumerate(HOURLY):
        mine = np.flatnonzero(replica == index)
        result = attribute_arrays([ids[i] for i in mine], begin[mine], end[mine], tokens[mine], MINUTE,
                                  to_quanta(Decimal(hourly)))
        assert int(result.span_quanta.sum()) == int(result.interval_quanta.sum())  # nothing made or lost
        assert (result.span_quanta >= 0).all() and (result.span_quanta[end[mine] == begin[mine]] == 0).all()
        # the truth: the union of this replica's spans (one running maximum), × the hourly rate
        order = np.lexsort((begin[mine], np.zeros(len(mine))))
        b, e = begin[mine][order], end[mine][order]
        reach = np.r_[b[0], np.maximum.accumulate(e)[:-1]]
        busy = int(np.clip(e - np.maximum(b, reach), 0, None).sum())
        assert int(result.interval_busy.sum()) == busy
        truth = Fraction(busy) * Fraction(Decimal(hourly)) / 3_600_000_000
        charged = Fraction(int(result.span_quanta.sum()), 10**9)
        assert abs(charged - truth) <= Fraction(len(result.interval_start), 2 * 10**9)
        total += int(result.span_quanta.sum())
    assert total > 0
