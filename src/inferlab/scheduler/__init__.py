"""Who waits for a replica slot, and in what order: the ``QueueManager`` and ``SchedulingPolicy``
interfaces, the per-pool wait queues (admission, deadlines, shedding), the policies (``fifo``,
``priority``, ``vtc`` and the default ``tiered``: classes → fair share across tenants → earliest
deadline), their fair-share counters (in process, or merged through Redis) and the drain rate."""

from inferlab.scheduler.counters import FairCounters, LocalCounters
from inferlab.scheduler.drain import DrainRate
from inferlab.scheduler.layered import LayeredPolicy, Layering
from inferlab.scheduler.policies import CLASS_NAMES, POLICY_NAMES, FifoPolicy, class_rank, make_policy
from inferlab.scheduler.protocol import (
    DeadlineExceeded,
    DeadlineUnreachable,
    QueueManager,
    QueueObserver,
    QueueRejected,
    QueueShed,
    QueueTimeout,
    SchedulingPolicy,
    WaiterView,
)
from inferlab.scheduler.queue import NullQueueObserver, PoolQueue, QueuePolicy, Waiter, WaitQueues
from inferlab.scheduler.shared import CounterSync, SharedCounters

__all__ = [
    "CLASS_NAMES",
    "POLICY_NAMES",
    "CounterSync",
    "DeadlineExceeded",
    "DeadlineUnreachable",
    "DrainRate",
    "FairCounters",
    "FifoPolicy",
    "LayeredPolicy",
    "Layering",
    "LocalCounters",
    "NullQueueObserver",
    "PoolQueue",
    "QueueManager",
    "QueueObserver",
    "QueuePolicy",
    "QueueRejected",
    "QueueShed",
    "QueueTimeout",
    "SchedulingPolicy",
    "SharedCounters",
    "WaitQueues",
    "Waiter",
    "WaiterView",
    "class_rank",
    "make_policy",
]
