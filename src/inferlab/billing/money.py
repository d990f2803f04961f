"""Money: ``Decimal`` USD; one rounding rule — half-up to the cent, once per invoice line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
MILLION = Decimal(1_000_000)


def to_cent(amount: Decimal) -> Decimal:
    """Half-up (away from zero on a half) to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def minor_units(amount: Decimal) -> int:
    """Cents as an integer (a payment provider's amount); ``amount`` must be whole cents."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def from_minor(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def text(amount: Decimal) -> str:
    """``12.30`` (two places, no exponent)."""
    return str(amount.quantize(CENT))
