"""Scheduling policies: pure orderings of the waiters of one queue (``SchedulingPolicy``)."""

from __future__ import annotations

from inferlab.scheduler.protocol import SortKey, WaiterView


class FifoPolicy:
    """The priority hint first (higher first; what the tier scheduler will set), then arrival."""

    name = "fifo"

    def key(self, waiter: WaiterView) -> SortKey:
        return (-waiter.request.priority,)

    def served(self, waiter: WaiterView) -> None:
        pass
