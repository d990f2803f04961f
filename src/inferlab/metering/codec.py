"""A usage event as the outbox keeps it: one JSON object, money as decimal strings (exact)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from inferlab.metering.event import EventStatus, TokenSource, UsageEvent


def _as_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(event: UsageEvent) -> bytes:
    """The event as JSON (orjson writes the dataclass's fields; enums as their values)."""
    return orjson.dumps(event, default=_as_text)


_SOURCES = {source.value: source for source in TokenSource}
_STATUSES = {status.value: status for status in EventStatus}


def decode(raw: bytes | str) -> UsageEvent:
    fields: dict[str, Any] = orjson.loads(raw)
    fields["time"] = datetime.fromisoformat(fields["time"])
    fields["token_source"] = _SOURCES[fields["token_source"]]  # a dict, not Enum.__call__: the shipper's hot loop
    fields["status"] = _STATUSES[fields["status"]]
    fields["price"] = Decimal(fields["price"])
    fields["hardware_cost"] = Decimal(fields["hardware_cost"])
    return UsageEvent(**fields)
