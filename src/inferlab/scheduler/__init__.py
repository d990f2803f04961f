"""Who waits for a replica slot, and in what order: the ``QueueManager`` and ``SchedulingPolicy``
interfaces, the per-pool wait queues, and the policies (today: priority hint, then arrival)."""

from inferlab.scheduler.policies import FifoPolicy
from inferlab.scheduler.protocol import (
    QueueManager,
    QueueObserver,
    QueueRejected,
    QueueTimeout,
    SchedulingPolicy,
    SortKey,
    WaiterView,
)
from inferlab.scheduler.queue import NullQueueObserver, PoolQueue, QueuePolicy, Waiter, WaitQueue, WaitQueues

__all__ = [
    "FifoPolicy",
    "NullQueueObserver",
    "PoolQueue",
    "QueueManager",
    "QueueObserver",
    "QueuePolicy",
    "QueueRejected",
    "QueueTimeout",
    "SchedulingPolicy",
    "SortKey",
    "WaitQueue",
    "WaitQueues",
    "Waiter",
    "WaiterView",
]
