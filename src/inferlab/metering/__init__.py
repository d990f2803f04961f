"""Usage metering: one usage event per request, made durable and shipped to the store."""

from inferlab.metering.event import EventStatus, TokenSource, UsageEvent

__all__ = ["EventStatus", "TokenSource", "UsageEvent"]
