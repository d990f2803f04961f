"""The usage pipeline's metrics: events written to the outbox, dropped, shipped, the backlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class MeteringMetrics:
    """The ``OutboxObserver`` and ``ShipperObserver`` of ``inferlab.metering``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.recorded = Counter("inferlab_usage_events_recorded",
                                "Usage events committed to the local outbox", registry=r)
        self.dropped_total = Counter("inferlab_usage_events_dropped",
                                     "Usage events dropped because the outbox's buffer was full", registry=r)
        self.shipped_total = Counter("inferlab_usage_events_shipped",
                                     "Usage events shipped to the store (new=false: it had them already)",
                                     ["new"], registry=r)
        self.ship_failures = Counter("inferlab_usage_ship_failures",
                                     "Failed attempts to ship usage events (the store down, most often)", registry=r)
        self.set_aside_total = Counter("inferlab_usage_events_set_aside",
                                       "Usage events the store refused, kept aside in the outbox", registry=r)
        self.backlog_events = Gauge("inferlab_usage_outbox_backlog",
                                    "Usage events in the outbox not shipped yet", registry=r)

    def written(self, events: int) -> None:
        self.recorded.inc(events)

    def dropped(self) -> None:
        self.dropped_total.inc()

    def shipped(self, events: int, new: int) -> None:
        self.shipped_total.labels("true").inc(new)
        if events > new:
            self.shipped_total.labels("false").inc(events - new)

    def ship_failed(self) -> None:
        self.ship_failures.inc()

    def set_aside(self) -> None:
        self.set_aside_total.inc()

    def backlog(self, pending: int) -> None:
        self.backlog_events.set(pending)
