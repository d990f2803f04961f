"""``CostTracker``: what a request is billed (list price) and what it cost (hardware), in ``Decimal``.

The list price comes from the versioned price book at the request's time, model and tier. The
hardware cost is the replica's hourly cost × its busy seconds, attributed to the requests it
served in proportion to their tokens (``attribution.py`` states the model). The hourly cost of a
replica is, in order: ``pricing.hardware.usd_per_hour`` of the replica, then of its model; else the
planning catalogue's rental price of the accelerator named for the replica or its model (or
carried by the event), × its devices. A replica with none of these costs nothing (and is logged
once by the caller that builds the rates).

Margin = price − hardware cost, per request and summed per tenant, model and day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

from inferlab.config.pricing import HardwareCost
from inferlab.metering.attribution import IntervalCost, Span, attribute, to_us
from inferlab.metering.event import UsageEvent
from inferlab.metering.pricebook import QUANTUM, PriceBook

QUANTA_PER_USD = 1_000_000_000  # 1 / QUANTUM
_FIELDS = tuple(f.name for f in fields(UsageEvent))
_EVERY_FIELD = attrgetter(*_FIELDS)
_PRICE = _FIELDS.index("price")
BATCH_ROUTE = "/v1/batches"


def to_quanta(usd: Decimal) -> int:
    return int((usd * QUANTA_PER_USD).to_integral_value())


def from_quanta(quanta: int) -> Decimal:
    return Decimal(quanta).scaleb(-9).quantize(QUANTUM)


class HardwareRates:
    """Replica → hourly cost in quanta (``None``: unknown, so free). ``rental`` maps a catalogue
    accelerator id to its hourly rental price (USD, per device); injected so this module does not
    load the catalogue itself."""

    def __init__(self, settings: HardwareCost, rental: Callable[[str], Decimal | None] = lambda _: None) -> None:
        self._settings = settings
        self._rental = rental
        self._found: dict[tuple[str, str, str | None], int | None] = {}

    def quanta_per_hour(self, replica: str, model: str, hardware: str | None = None) -> int | None:
        key = (replica, model, hardware)
        if key not in self._found:
            self._found[key] = self._resolve(replica, model, hardware)
        return self._found[key]

    def _resolve(self, replica: str, model: str, hardware: str | None) -> int | None:
        settings = self._settings
        for name in (replica, model):
            if name in settings.usd_per_hour:
                return to_quanta(settings.usd_per_hour[name])
        accelerator = settings.accelerators.get(replica) or settings.accelerators.get(model) or hardware
        if accelerator is None:
            return None
        hourly = self._rental(accelerator)
        if hourly is None:
            return None
        devices = settings.devices.get(replica, settings.devices.get(model, 1))
        return to_quanta(hourly * devices)


@dataclass(frozen=True, slots=True)
class Margin:
    price: Decimal
    hardware_cost: Decimal

    @property
    def margin(self) -> Decimal:
        return self.price - self.hardware_cost


def service_span(event: UsageEvent) -> Span | None:
    """The time the replica worked on the request: its duration less its wait in the gateway's queue."""
    if event.replica is None:
        return None
    end = to_us(event.time)
    service_us = max(0, round((event.duration_ms - (event.queue_ms or 0.0)) * 1000))
    return Span(event.id, end - service_us, end, event.prompt_tokens + event.completion_tokens)


class CostTracker:
    def __init__(self, book: PriceBook, rates: HardwareRates, *, interval_s: int = 60) -> None:
        self.book = book
        self.rates = rates
        self.interval_us = interval_s * 1_000_000

    # ---- list price -----------------------------------------------------------------------
    def price(self, event: UsageEvent) -> Decimal:
        rates = self.book.rates(event.model, event.tier, event.time, batch=event.route.startswith(BATCH_ROUTE))
        return rates.cost(event.prompt_tokens, event.completion_tokens, event.cached_tokens)

    def priced(self, event: UsageEvent) -> UsageEvent:
        """``event`` with its list price (the metering step's ``Pricing``: on the request path, so a
        positional copy rather than ``dataclasses.replace``, which costs twice as much)."""
        values = list(_EVERY_FIELD(event))
        values[_PRICE] = self.price(event)
        return UsageEvent(*values)

    # ---- hardware cost ----------------------------------------------------------------------
    def interval_start(self, moment: datetime) -> int:
        """The start (µs since the epoch) of the interval holding ``moment``."""
        us = to_us(moment)
        return us - us % self.interval_us

    def attribute_replica(self, replica: str, events: Iterable[UsageEvent]) -> dict[int, IntervalCost]:
        """Every interval the events' spans touch, on one replica. Give every event whose span
        touches those intervals (the cost of an interval depends on all of them)."""
        spans, rate = [], None
        for event in events:
            span = service_span(event)
            if span is None or event.replica != replica:
                continue
            spans.append(span)
            if rate is None:
                rate = self.rates.quanta_per_hour(replica, event.model, event.hardware)
        return attribute(spans, self.interval_us, rate or 0)

    def hardware_costs(self, events: Iterable[UsageEvent]) -> dict[str, Decimal]:
        """Request id → hardware cost, for a complete set of events (every replica's)."""
        by_replica: dict[str, list[UsageEvent]] = {}
        for event in events:
            if event.replica is not None:
                by_replica.setdefault(event.replica, []).append(event)
        quanta: dict[str, int] = {}
        for replica, found in by_replica.items():
            for interval in self.attribute_replica(replica, found).values():
                for event_id, part in interval.parts.items():
                    quanta[event_id] = quanta.get(event_id, 0) + part
        return {event_id: from_quanta(amount) for event_id, amount in quanta.items()}

    def costed(self, events: Iterable[UsageEvent]) -> list[UsageEvent]:
        """The events with their list price and attributed hardware cost."""
        listed = list(events)
        hardware = self.hardware_costs(listed)
        return [replace(e, price=self.price(e), hardware_cost=hardware.get(e.id, Decimal(0))) for e in listed]


def margins(events: Iterable[UsageEvent], key: Callable[[UsageEvent], tuple[str, ...]]) -> Mapping[tuple[str, ...], Margin]:
    """Price, hardware cost and margin summed per ``key`` (e.g. tenant, model, day)."""
    sums: dict[tuple[str, ...], tuple[Decimal, Decimal]] = {}
    for event in events:
        group = key(event)
        price, hardware = sums.get(group, (Decimal(0), Decimal(0)))
        sums[group] = (price + event.price, hardware + event.hardware_cost)
    return {group: Margin(price, hardware) for group, (price, hardware) in sums.items()}


def by_tenant_model_day(event: UsageEvent) -> tuple[str, str, str]:
    return event.tenant, event.model, event.time.date().isoformat()
