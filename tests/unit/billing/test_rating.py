"""Rating invariants: the total is the sum of its lines, rounding is once per line, and the result
depends only on the token sums — not on event order, batching or duplicates the ledger dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from inferlab.billing.money import CENT, ZERO, to_cent
from inferlab.billing.periods import Period
from inferlab.billing.plans import PlanBook
from inferlab.billing.rating import Tokens, rate, segments, usage_charge
from inferlab.config.billing import BillingSettings, PlanVersion
from inferlab.config.pricing import PricingSettings
from inferlab.metering.pricebook import PriceBook

PERIOD = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
CHANGE = datetime(2026, 3, 16, 10, 30, tzinfo=UTC)
BOOK = PriceBook(PricingSettings.model_validate({
    "models": {"m1": {"input_per_million": "0.15", "output_per_million": "0.60", "cached_per_million": "0.075"},
               "m2": {"input_per_million": "3", "output_per_million": "15"}},
    "versions": [{"effective": CHANGE.isoformat(), "models": {"m1": {"input_per_million": "0.2",
                                                                      "output_per_million": "0.8"}}}]}))
PLANS = BillingSettings.model_validate({"plans": {
    "payg": [{}],
    "pro": [{"flat_fee": "20", "included_tokens": 1_000_000, "minimum": "25",
             "prices": {"m2": {"output": "12"}}}],
    "grad": [{"tiers": {"mode": "graduated", "bands": [{"up_to": 1000, "per_million": "0"},
                                                         {"up_to": 100000, "per_million": "2", "flat": "1"},
                                                         {"per_million": "1"}]}},
             {"effective": "2026-03-20T00:00:00Z",
              "tiers": {"mode": "graduated", "bands": [{"up_to": 1000, "per_million": "0"},
                                                        {"up_to": 100000, "per_million": "3", "flat": "1"},
                                                        {"per_million": "1"}]}}],
    "vol": [{"tiers": {"mode": "volume", "bands": [{"up_to": 50000, "per_million": "4"},
                                                    {"per_million": "2", "flat": "5"}]}}],
}}).plans

EVENT = st.tuples(st.integers(0, 10**9 - 1),  # µs offset into the period / 1000
                  st.sampled_from(["m1", "m2"]), st.sampled_from(["free", "pro"]),
                  st.integers(0, 5000), st.integers(0, 3000), st.integers(0, 100))


def _rate_events(events: list[tuple[int, str, str, int, int, int]], plan: str):  # type: ignore[no-untyped-def]
    book = PlanBook(PLANS)
    segs = segments(PERIOD, plan, book, BOOK)
    usage: list[dict[tuple[str, str], Tokens]] = [{} for _ in segs]
    for offset, model, tier, prompt, completion, cached in events:
        moment = PERIOD.start + timedelta(microseconds=offset * 2677)
        index = next(i for i, s in enumerate(segs) if s.start <= moment < s.end)
        usage[index].setdefault((model, tier), Tokens()).add(prompt, completion, min(cached, prompt))
    return rate(PERIOD, segs, usage, BOOK)


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENT, max_size=60), st.sampled_from(["payg", "pro", "grad", "vol"]), st.randoms())
def test_rating_is_independent_of_order_and_every_line_is_whole_cents(events, plan, rnd) -> None:  # type: ignore[no-untyped-def]
    lines = _rate_events(events, plan)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert _rate_events(shuffled, plan) == lines
    for line in lines:
        assert line.amount == to_cent(line.amount)
    assert sum((line.amount for line in lines), ZERO) == sum((to_cent(x.amount) for x in lines), ZERO)


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=40), st.sampled_from(["payg", "pro"]))
def test_usage_lines_price_the_token_sums_rounded_once(events, plan) -> None:  # type: ignore[no-untyped-def]
    lines = _rate_events(events, plan)
    for line in lines:
        if line.kind == "usage":
            exact = Decimal(line.quantity) * line.unit_price / 1_000_000
            assert line.amount == to_cent(exact)  # one rounding, of the exact line amount
            assert abs(line.amount - exact) <= CENT / 2
    tokens = sum(p + c for _, _, _, p, c, _ in events)
    assert sum(line.quantity + line.included for line in lines if line.kind == "usage") == tokens


def test_a_mid_period_price_change_splits_the_line() -> None:
    before = (int((CHANGE - PERIOD.start - timedelta(hours=1)) / timedelta(microseconds=2677)), "m1", "free",
              1_000_000, 0, 0)
    after = (int((CHANGE - PERIOD.start + timedelta(hours=1)) / timedelta(microseconds=2677)), "m1", "free",
             1_000_000, 0, 0)
    lines = [x for x in _rate_events([before, after], "payg") if x.direction == "input"]
    assert [(x.unit_price, x.amount, x.quantity) for x in lines] == [
        (Decimal("0.15"), Decimal("0.15"), 1_000_000), (Decimal("0.2"), Decimal("0.20"), 1_000_000)]
    assert lines[0].end == CHANGE == lines[1].start
    # m2's price did not change: one line across the change
    m2 = [x for x in _rate_events([(b, "m2", t, p, c, k) for b, _, t, p, c, k in (before, after)], "payg")
          if x.direction == "input"]
    assert len(m2) == 1 and m2[0].quantity == 2_000_000


def test_fees_included_tokens_and_minimum() -> None:
    lines = _rate_events([(10, "m1", "pro", 600_000, 600_000, 0), (20, "m2", "pro", 0, 1_000_000, 0)], "pro")
    kinds = {x.kind: x for x in lines}
    assert kinds["fee"].amount == Decimal("20.00")
    m1_in = next(x for x in lines if x.model == "m1" and x.direction == "input")
    assert (m1_in.included, m1_in.quantity, m1_in.amount) == (600_000, 0, ZERO)
    m2_out = next(x for x in lines if x.model == "m2")
    assert m2_out.unit_price == Decimal(12) and m2_out.amount == Decimal("12.00")  # the plan's own price
    used = usage_charge([x for x in lines if x.kind != "minimum"])
    assert kinds["minimum"].amount == Decimal(25) - used  # below the minimum: topped up to it
    assert usage_charge(lines) == Decimal(25)


def test_graduated_bands_cross_a_plan_change_and_volume_prices_every_token_alike() -> None:
    start = int(timedelta(days=2) / timedelta(microseconds=2677))
    late = int(timedelta(days=25) / timedelta(microseconds=2677))
    lines = _rate_events([(start, "m1", "free", 50_000, 0, 0), (late, "m1", "free", 100_000, 0, 0)], "grad")
    bands = [(x.description, x.quantity, x.unit_price, x.amount) for x in lines]
    assert bands == [("tokens, band 1", 1000, Decimal(0), ZERO),
                     ("tokens, band 2", 49_000, Decimal(2), Decimal("0.10")),
                     ("tokens, band 2", 50_000, Decimal(3), Decimal("0.15")),  # the new version's price
                     ("tokens, band 3", 50_000, Decimal(1), Decimal("0.05")),
                     ("band 2 fee", 1, ZERO, Decimal("1.00"))]
    volume = _rate_events([(start, "m1", "free", 60_000, 0, 0)], "vol")
    assert [(x.quantity, x.unit_price, x.amount) for x in volume] == [(60_000, Decimal(2), Decimal("0.12")),
                                                                       (1, ZERO, Decimal("5.00"))]


def test_plan_versions_carry_over_unset_fields() -> None:
    book = PlanBook({"p": [PlanVersion(flat_fee=Decimal(5), included_tokens=10),
                           PlanVersion(effective=CHANGE, flat_fee=Decimal(7))]})
    assert book.plan("p", CHANGE).included_tokens == 10 and book.plan("p", CHANGE).flat_fee == 7
    assert book.plan("p", CHANGE - timedelta(seconds=1)).flat_fee == 5
