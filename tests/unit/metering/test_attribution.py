"""Hardware attribution: busy time (not wall time) priced per interval, split by tokens, exactly."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from inferlab.config import PricingSettings
from inferlab.config.pricing import HardwareCost
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.attribution import Span, apportion, attribute, busy_us, interval_quanta
from inferlab.metering.cost import CostTracker, HardwareRates, by_tenant_model_day, margins, to_quanta
from inferlab.metering.pricebook import PriceBook

MINUTE = 60_000_000
HOURLY = to_quanta(Decimal("3.60"))  # $3.60 an hour = $0.001 a second = 10⁶ quanta a second


def test_apportion_is_exact_and_breaks_ties_by_key() -> None:
    assert apportion(10, [1, 1, 1], ["b", "a", "c"]) == [3, 4, 3]  # the leftover unit goes to "a"
    assert apportion(7, [2, 5], ["x", "y"]) == [2, 5]
    assert sum(apportion(1_000_003, [3, 7, 11, 13], list("abcd"))) == 1_000_003


def test_interval_cost_rounds_half_even() -> None:
    assert interval_quanta(MINUTE, HOURLY) == 60_000_000  # a busy minute at $3.60/h = $0.06
    assert interval_quanta(1, 1_800_000_000) == 0  # 0.5 → 0
    assert interval_quanta(3, 1_800_000_000) == 2  # 1.5 → 2


def test_concurrent_requests_share_the_busy_time_instead_of_each_paying_for_it() -> None:
    # two requests over the same 10 s of one minute: the replica was busy 10 s, not 20
    spans = [Span("a", 0, 10_000_000, 100), Span("b", 0, 10_000_000, 300)]
    [interval] = attribute(spans, MINUTE, HOURLY).values()
    assert interval.busy_us == 10_000_000 and interval.quanta == 10_000_000
    assert interval.parts == {"a": 2_500_000, "b": 7_500_000}  # by tokens: 1 : 3


def test_idle_time_is_not_charged_and_overlaps_are_counted_once() -> None:
    assert busy_us(0, MINUTE, [(0, 5), (3, 9), (20, 30), (25, 26)]) == 9 + 10
    assert busy_us(10, 20, [(0, 15), (18, 40)]) == 5 + 2


def test_a_request_spanning_intervals_spreads_its_tokens_over_them() -> None:
    # a's 100 tokens: 25 in the first minute (15 s of its 60), 75 in the second
    intervals = attribute([Span("a", MINUTE - 15_000_000, MINUTE + 45_000_000, 100),
                           Span("b", MINUTE, MINUTE + 45_000_000, 25)], MINUTE, HOURLY)
    assert intervals[0].parts == {"a": 15_000_000}
    assert intervals[MINUTE].parts == {"a": 45_000_000 * 3 // 4, "b": 45_000_000 // 4}  # 75 : 25


def test_requests_without_tokens_share_by_time() -> None:
    [interval] = attribute([Span("a", 0, 1_000_000, 0), Span("b", 0, 3_000_000, 0)], MINUTE, HOURLY).values()
    assert interval.parts == {"a": 750_000, "b": 2_250_000}


spans_strategy = st.lists(
    st.tuples(st.integers(0, 5 * MINUTE), st.integers(0, 3 * MINUTE), st.integers(0, 5000)),
    min_size=1, max_size=40)


@given(spans_strategy, st.integers(0, 10**10), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_parts_sum_exactly_to_the_busy_cost_whatever_the_order(raw: list[tuple[int, int, int]], rate: int,
                                                               shuffle: random.Random) -> None:
    spans = [Span(f"r{i}", start, start + length, tokens) for i, (start, length, tokens) in enumerate(raw)]
    result = attribute(spans, MINUTE, rate)
    for interval in result.values():
        assert sum(interval.parts.values()) == interval.quanta
        assert interval.quanta == interval_quanta(interval.busy_us, rate)
    total_busy = busy_us(0, 10 * MINUTE, [(s.start_us, s.end_us) for s in spans])
    assert sum(i.busy_us for i in result.values()) == total_busy  # each busy µs is in exactly one interval
    shuffle.shuffle(spans)
    assert attribute(spans, MINUTE, rate) == result


def _event(i: int, end: datetime, duration_ms: float, tokens: int, replica: str = "r0") -> UsageEvent:
    return UsageEvent(id=f"e{i}", time=end, tenant="acme", user=None, key=None, tier="pro", route="/v1/chat/completions",
                      model="m", model_version=None, replica=replica, hardware=None, prompt_tokens=tokens,
                      completion_tokens=0, cached_tokens=0, token_source=TokenSource.ENGINE, queue_ms=5.0,
                      ttft_ms=None, duration_ms=duration_ms, status=EventStatus.SUCCESS, http_status=200)


def test_the_tracker_prices_and_costs_events_and_sums_margins() -> None:
    pricing = PricingSettings.model_validate({"default": {"input_per_million": 1},
                                              "hardware": {"usd_per_hour": {"m": "3.6"}}})
    tracker = CostTracker(PriceBook(pricing), HardwareRates(pricing.hardware), interval_s=60)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    events = [_event(0, start + timedelta(seconds=10), 10_005, 1000),  # 10 s of service after 5 ms queued
              _event(1, start + timedelta(seconds=10), 10_005, 3000),
              _event(2, start + timedelta(seconds=30), 5.0, 10)]  # only queued: no service, no hardware cost
    assert tracker.priced(events[0]) == replace(events[0], price=Decimal("0.001"))  # every other field kept
    costed = {e.id: e for e in tracker.costed(events)}
    assert costed["e0"].price == Decimal("0.001") and costed["e1"].price == Decimal("0.003")
    assert costed["e0"].hardware_cost == Decimal("0.0025") and costed["e1"].hardware_cost == Decimal("0.0075")
    assert costed["e2"].hardware_cost == 0
    [day] = margins(costed.values(), by_tenant_model_day).values()
    assert day.price == Decimal("0.00401") and day.hardware_cost == Decimal("0.01")
    assert day.margin == Decimal("-0.00599")


def test_hardware_rates_from_configuration_or_the_catalogue() -> None:
    settings = HardwareCost(usd_per_hour={"r1": Decimal("2.5"), "m": Decimal(1)},
                            accelerators={"r2": "h100"}, devices={"r2": 4})
    rates = HardwareRates(settings, rental=lambda acc: Decimal("2.00") if acc == "h100" else None)
    assert rates.quanta_per_hour("r1", "m") == 2_500_000_000
    assert rates.quanta_per_hour("r9", "m") == 1_000_000_000  # the model's
    assert rates.quanta_per_hour("r2", "other") == 8_000_000_000  # 4 devices × $2
    assert rates.quanta_per_hour("r3", "other", "h100") == 2_000_000_000  # the event's hardware
    assert rates.quanta_per_hour("r3", "other", "unknown") is None


def _reference(spans: list[Span], interval_us: int, rate: int) -> dict[int, tuple[int, int, dict[str, int]]]:
    """The model written out plainly, span by span and interval by interval (no numpy)."""
    members: dict[int, list[tuple[Span, int, int, int]]] = {}
    for span in spans:
        if span.end_us <= span.start_us:
            continue
        starts = list(range(span.start_us - span.start_us % interval_us, span.end_us, interval_us))
        overlaps = [min(span.end_us, s + interval_us) - max(span.start_us, s) for s in starts]
        tokens = apportion(span.tokens, overlaps, [f"{i:09d}" for i in range(len(starts))]) if span.tokens \
            else [0] * len(starts)
        for start, share, overlap in zip(starts, tokens, overlaps, strict=True):
            begin = max(span.start_us, start)
            members.setdefault(start, []).append((span, share, overlap, begin))
    result = {}
    for start, found in members.items():
        busy = busy_us(start, start + interval_us, [(b, b + o) for _, _, o, b in found])
        quanta = interval_quanta(busy, rate)
        weights = [share for _, share, _, _ in found] if any(share for _, share, _, _ in found) \
            else [o for _, _, o, _ in found]
        parts = apportion(quanta, weights, [s.id for s, _, _, _ in found])
        result[start] = (busy, quanta, {s.id: p for (s, _, _, _), p in zip(found, parts, strict=True)})
    return result


@given(spans_strategy, st.integers(0, 10**12), st.sampled_from([MINUTE, 5 * MINUTE, 60 * MINUTE]))
@settings(max_examples=200, deadline=None)
def test_the_vectorised_attribution_equals_the_model_written_out(raw: list[tuple[int, int, int]], rate: int,
                                                                 interval_us: int) -> None:
    spans = [Span(f"r{(i * 7919) % 101:03d}-{i}", start - MINUTE, start - MINUTE + length, tokens)
             for i, (start, length, tokens) in enumerate(raw)]
    got = {start: (c.busy_us, c.quanta, c.parts) for start, c in attribute(spans, interval_us, rate).items()}
    assert got == _reference(spans, interval_us, rate)


def test_products_beyond_int64_are_computed_exactly() -> None:
    spans = [Span("a", 0, 3_600_000_000, 2**40), Span("b", 0, 3_600_000_000, 1)]
    [interval] = attribute(spans, 3_600_000_000, 10**18).values()  # $10⁹ an hour
    assert interval.quanta == 10**18 and sum(interval.parts.values()) == 10**18
    assert interval.parts == dict(zip("ab", apportion(10**18, [2**40, 1], ["a", "b"]), strict=True))
    assert interval.parts["b"] == 909_495  # 909,494.70: b has the larger remainder, so the leftover unit
