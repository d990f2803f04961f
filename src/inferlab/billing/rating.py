"""Rating: a period's token sums → invoice lines. Pure, over plain data.

The period is cut into segments wherever the tenant's plan or the price book changes; a segment's
tokens are priced by the plan and the price book in force at its start. Tokens are sums (per
segment, model and tier), so the result depends on nothing but those sums — not on the order in
which events arrived, nor on how they were batched — and rating hourly rollups equals rating the
raw events (``bench/billing.py`` checks it at scale).

Lines (``Line``), in order:

- ``usage``: one per model, tier and direction (input, cached, output) and run of equal unit
  price: a mid-period price change splits the line at the instant it takes effect. The plan's
  included tokens are taken from the first lines (chronologically, then by model, tier, direction).
- ``tier``: a tiered plan prices all tokens by its bands instead — graduated (each band's tokens
  at its price; a band's flat fee once it is entered) or volume (every token at the price of the
  band the period's total falls in) — one line per band and run of equal price.
- ``fee``: the flat fee of the plan in force at the period's start.
- ``minimum``: what usage lacks to reach the plan's minimum.

Each line is rounded once, half-up to the cent; the invoice's subtotal is the sum of its lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from inferlab.billing.money import MILLION, ZERO, to_cent
from inferlab.billing.periods import Period
from inferlab.billing.plans import Plan, PlanBook
from inferlab.config.billing import Direction, TokenTiers
from inferlab.metering.pricebook import PriceBook

LineKind = Literal["usage", "tier", "fee", "minimum", "adjustment"]
DIRECTIONS: tuple[Direction, ...] = ("input", "cached", "output")
USAGE_KINDS = ("usage", "tier", "minimum")  # what late usage can change (the adjustment's base)


@dataclass(slots=True)
class Tokens:
    """Token sums; ``cached`` is part of ``prompt``."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0

    def add(self, prompt: int, completion: int, cached: int) -> None:
        self.prompt += prompt
        self.completion += completion
        self.cached += cached

    def by_direction(self) -> dict[Direction, int]:
        cached = min(max(self.cached, 0), self.prompt)
        return {"input": self.prompt - cached, "cached": cached, "output": self.completion}

    @property
    def total(self) -> int:
        return self.prompt + self.completion


SegmentUsage = Mapping[tuple[str, str], Tokens]  # (model, tier) → tokens


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime
    end: datetime
    plan: Plan


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    description: str
    amount: Decimal  # USD, whole cents
    quantity: int = 1  # tokens billed (after included tokens), or 1
    unit_price: Decimal = ZERO  # USD per million tokens (usage, tier) or per unit
    included: int = 0  # tokens free under the plan
    model: str | None = None
    tier: str | None = None
    direction: Direction | None = None
    start: datetime | None = None
    end: datetime | None = None
    ref: str | None = None  # an adjustment: the invoice it corrects

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "amount": str(self.amount),
                "quantity": self.quantity, "unit_price": str(self.unit_price), "included": self.included,
                "model": self.model, "tier": self.tier, "direction": self.direction,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None, "ref": self.ref}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Line:
        return cls(data["kind"], data["description"], Decimal(data["amount"]), int(data["quantity"]),
                   Decimal(data["unit_price"]), int(data["included"]), data.get("model"), data.get("tier"),
                   data.get("direction"),
                   datetime.fromisoformat(data["start"]) if data.get("start") else None,
                   datetime.fromisoformat(data["end"]) if data.get("end") else None, data.get("ref"))


def segments(period: Period, plan: str, plans: PlanBook, book: PriceBook) -> list[Segment]:
    """``period`` cut at every instant the plan or the price book changes."""
    cuts = {period.start, period.end, *plans.instants(plan, period.start, period.end),
            *(i for i in book.versions() if period.start < i < period.end)}
    bounds = sorted(cuts)
    return [Segment(a, b, plans.plan(plan, a)) for a, b in itertools.pairwise(bounds)]


@dataclass(slots=True)
class _Run:
    """A line being built: tokens at one unit price over adjacent segments."""

    key: tuple[Any, ...]
    unit: Decimal
    quantity: int
    start: datetime
    end: datetime
    included: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _runs_add(runs: list[_Run], last: dict[tuple[Any, ...], _Run], key: tuple[Any, ...], unit: Decimal, quantity: int,
              seg: Segment, **extra: Any) -> None:
    run = last.get(key)
    if run is not None and run.unit == unit and run.end == seg.start:
        run.quantity += quantity
        run.end = seg.end
        return
    run = _Run(key, unit, quantity, seg.start, seg.end, extra=extra)
    runs.append(run)
    last[key] = run


def _standard(segs: Sequence[Segment], usage: Sequence[SegmentUsage], book: PriceBook) -> list[_Run]:
    runs: list[_Run] = []
    last: dict[tuple[Any, ...], _Run] = {}
    for seg, found in zip(segs, usage, strict=True):
        for (model, tier) in sorted(found):
            rates = book.rates(model, tier, seg.start)
            listed = {"input": rates.input, "cached": rates.cached, "output": rates.output}
            for direction, quantity in found[(model, tier)].by_direction().items():
                if quantity <= 0:
                    continue
                own = seg.plan.price(model, direction)
                unit = own if own is not None else listed[direction]
                _runs_add(runs, last, (model, tier, direction), unit, quantity, seg,
                          model=model, tier=tier, direction=direction)
    return runs


def _band_index(tiers: TokenTiers, quantity: int) -> int:
    for index, band in enumerate(tiers.bands):
        if band.up_to is None or quantity <= band.up_to:
            return index
    return len(tiers.bands) - 1


def _tiered(segs: Sequence[Segment], billable: Sequence[int]) -> tuple[list[_Run], list[Line]]:
    runs: list[_Run] = []
    last: dict[tuple[Any, ...], _Run] = {}
    flats: list[Line] = []
    total = sum(billable)
    position = 0
    first = segs[0].plan.tiers
    assert first is not None
    if first.mode == "volume" and total > 0:
        index = _band_index(first, total)
        if first.bands[index].flat:
            flats.append(Line("tier", f"band {index + 1} fee", to_cent(first.bands[index].flat)))
    for seg, quantity in zip(segs, billable, strict=True):
        tiers = seg.plan.tiers
        assert tiers is not None
        if quantity <= 0:
            continue
        if tiers.mode == "volume":
            index = _band_index(tiers, total)
            _runs_add(runs, last, ("band", index), tiers.bands[index].per_million, quantity, seg, band=index)
            continue
        lower = 0
        for index, band in enumerate(tiers.bands):
            upper = band.up_to
            take_from, take_to = max(position, lower), min(position + quantity, upper if upper is not None else
                                                           position + quantity)
            if take_to > take_from:
                if take_from == lower and band.flat:
                    flats.append(Line("tier", f"band {index + 1} fee", to_cent(band.flat), start=seg.start))
                _runs_add(runs, last, ("band", index), band.per_million, take_to - take_from, seg, band=index)
            if upper is None:
                break
            lower = upper
        position += quantity
    return runs, flats


def _amount(run: _Run) -> Decimal:
    return to_cent(Decimal(run.quantity) * run.unit / MILLION)


def rate(period: Period, segs: Sequence[Segment], usage: Sequence[SegmentUsage], book: PriceBook) -> list[Line]:
    """The lines of ``period``: ``usage[i]`` holds the tokens of ``segs[i]``."""
    opening = segs[0].plan
    lines: list[Line] = []
    if opening.tiers is None:
        runs = _standard(segs, usage, book)
        included = opening.included_tokens
        for run in runs:
            free = min(included, run.quantity)
            included -= free
            run.included, run.quantity = free, run.quantity - free
            x = run.extra
            lines.append(Line("usage", f"{x['model']} {x['direction']} tokens", _amount(run), run.quantity, run.unit,
                              run.included, x["model"], x["tier"], x["direction"], run.start, run.end))
    else:
        included = opening.included_tokens
        billable: list[int] = []
        frees: list[int] = []
        for found in usage:
            quantity = sum(t.total for t in found.values())
            free = min(included, quantity)
            included -= free
            billable.append(quantity - free)
            frees.append(free)
        runs, flats = _tiered(segs, billable)
        free_total = sum(frees)
        for run in runs:
            band = run.extra["band"]
            lines.append(Line("tier", f"tokens, band {band + 1}", _amount(run), run.quantity, run.unit,
                              start=run.start, end=run.end))
        if lines and free_total:
            lines[0] = replace(lines[0], included=free_total)
        lines.extend(flats)
    used = sum((line.amount for line in lines), ZERO)
    if opening.flat_fee:
        lines.append(Line("fee", f"{opening.name} plan", to_cent(opening.flat_fee), start=period.start,
                          end=period.end))
    if opening.minimum and used < opening.minimum:
        lines.append(Line("minimum", f"minimum of {to_cent(opening.minimum)}", to_cent(opening.minimum - used),
                          start=period.start, end=period.end))
    return lines


def usage_charge(lines: Sequence[Line]) -> Decimal:
    """What late usage can change: the usage, tier and minimum lines."""
    return sum((line.amount for line in lines if line.kind in USAGE_KINDS), ZERO)
