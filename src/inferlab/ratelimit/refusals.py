"""What a refused admission tells the client: pure functions from the refusing charge to an error.

    the request alone is above the limit   400 request_exceeds_limit   no retry can ever admit it
    a quota used up for its period         429 insufficient_quota       no Retry-After, x-should-retry: false
    a quota held by reservations in flight 429 rate_limit_exceeded      Retry-After: when they should settle
    every concurrency slot taken           429 rate_limit_exceeded      Retry-After: when a slot should free
    a rate window full                     429 rate_limit_exceeded      Retry-After: when the window has room

Quota refusals say what was used, how much of it is reserved by requests in progress and what this
request reserves, in the message and in ``x-inferlab-quota-*`` headers (spend in USD).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inferlab.errors import InferLabError, QuotaExhausted, RateLimited, RequestExceedsLimit
from inferlab.ratelimit.protocol import BucketState, Charge

MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the request reserved: prompt tokens (estimated) and completion tokens (max_tokens × n)."""

    prompt: int
    completion: int


def _amount(charge: Charge, value: int) -> str:
    if charge.kind == "quota_spend":
        return f"${value / MICRO:,.6f}"
    if charge.kind in ("tokens", "quota_tokens"):
        return f"{value:,} tokens"
    return f"{value:,}"


def _number(charge: Charge, value: int) -> str:
    return f"${value / MICRO:,.6f}" if charge.kind == "quota_spend" else f"{value:,}"


def _header_amount(charge: Charge, value: int) -> str:
    return f"{value / MICRO:.6f}" if charge.kind == "quota_spend" else str(value)


def _limit_name(charge: Charge) -> str:
    return f"{charge.field or charge.kind} (scope {charge.scope or 'unknown'})"


def _duration(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def never_fits(charges: Sequence[Charge]) -> Charge | None:
    """The first charge larger than its whole limit: such a request can never be admitted."""
    for charge in charges:
        if charge.amount > charge.limit:
            return charge
    return None


def exceeds_limit(charge: Charge, reserved: Reservation) -> RequestExceedsLimit:
    if charge.kind in ("requests", "concurrent"):
        return RequestExceedsLimit(f"The {_limit_name(charge)} limit is {charge.limit}: no request can be admitted")
    what = "quota" if charge.kind.startswith("quota") else f"limit, per {charge.ttl_s:g}s window,"
    reserves = _amount(charge, charge.amount)
    if charge.kind != "quota_spend":
        reserves += f" (~{reserved.prompt:,} prompt + {reserved.completion:,} completion)"
    return RequestExceedsLimit(
        f"This request reserves {reserves}, more than the whole {_limit_name(charge)} {what} "
        f"of {_amount(charge, charge.limit)}: it can never be admitted; lower max_tokens",
        param="max_tokens" if reserved.completion and reserved.prompt <= charge.limit else None,
    )


def quota_headers(charge: Charge, state: BucketState) -> dict[str, str]:
    used = state.limit - state.remaining
    return {
        "x-inferlab-quota": charge.field,
        "x-inferlab-quota-scope": charge.scope,
        "x-inferlab-quota-limit": _header_amount(charge, charge.limit),
        "x-inferlab-quota-used": _header_amount(charge, used),
        "x-inferlab-quota-in-flight": _header_amount(charge, min(used, state.unsettled)),
        "x-inferlab-quota-requested": _header_amount(charge, charge.amount),
    }


def quota_refusal(
    charge: Charge, state: BucketState, headers: dict[str, str], settle_in_s: float
) -> InferLabError:
    """Exhausted (settled usage alone leaves no room) or busy (reservations in flight may free it)."""
    used = state.limit - state.remaining
    in_flight = min(used, state.unsettled)
    headers = {**headers, **quota_headers(charge, state)}
    reserved = "none" if not in_flight else f"{_number(charge, in_flight)} of it"
    facts = (f"{_limit_name(charge)}: {_number(charge, used)} of {_amount(charge, charge.limit)} used, "
             f"{reserved} reserved by requests in progress; this request reserves {_amount(charge, charge.amount)}")
    if used - in_flight + charge.amount > charge.limit:
        return QuotaExhausted(f"Quota exhausted: {facts}. It resets in {_duration(charge.ttl_s)}", headers=headers)
    headers["retry-after-ms"] = str(round(settle_in_s * 1000))
    return RateLimited(f"Quota {facts}; retry after {settle_in_s:.0f}s", retry_after=settle_in_s, headers=headers)


def busy_refusal(charge: Charge, state: BucketState, headers: dict[str, str], retry_after_s: float) -> RateLimited:
    """A rate window or the concurrency slots are full: room is expected in ``retry_after_s``."""
    retry = max(retry_after_s, 0.001)
    headers = {**headers, "retry-after-ms": str(max(1, round(retry * 1000)))}
    if charge.kind == "concurrent":
        message = (f"Too many concurrent requests: {_limit_name(charge)} allows {charge.limit}; "
                   f"a slot is expected to free in ~{retry:.0f}s")
    else:
        message = (f"Rate limit reached for {charge.kind}: {_limit_name(charge)} allows "
                   f"{_amount(charge, charge.limit)} per {charge.ttl_s:g}s, {state.remaining:,} left; "
                   f"retry after {retry:.1f}s")
    return RateLimited(message, retry_after=retry, headers=headers)
