"""The metering step's seams: where events go, what prices them, what counts tokens."""

from __future__ import annotations

from typing import Protocol

from inferlab.backends.tokenize import Tokenizer
from inferlab.metering.event import UsageEvent

__all__ = ["Pricing", "Tokenizers", "UsageObserver", "UsageRecorder"]


class UsageRecorder(Protocol):
    """Takes events off the request path (``metering.outbox.Outbox``)."""

    def append(self, event: UsageEvent) -> bool:
        """Keep ``event``; never blocks, never does I/O. False when it could not be kept."""
        ...

    async def append_durably(self, event: UsageEvent, timeout_s: float) -> bool:
        """Keep ``event`` and wait until it survives the process being killed (at most ``timeout_s``)."""
        ...


class Pricing(Protocol):
    """Fills an event's list price and hardware cost (the cost side, ``CostTracker``). Pure and fast:
    it runs on the request path, once per call."""

    def priced(self, event: UsageEvent) -> UsageEvent: ...


class Tokenizers(Protocol):
    """The tokenizer of the engine behind a replica, if it has one the gateway can use."""

    def get(self, replica: str) -> Tokenizer | None: ...


class UsageObserver(Protocol):
    """Sees every usage event as it is recorded (per-tenant token and cost metrics); never blocks,
    never does I/O, never raises."""

    def usage_recorded(self, event: UsageEvent) -> None: ...
