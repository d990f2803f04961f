"""The wait queues from the models' typed queue settings (called by the composition root).

One set of fair-share counters per model (its generation and embeddings pools share it): local,
or merged through Redis by a ``CounterSync`` the root runs in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inferlab.config import ModelConfig, SchedulerSettings
from inferlab.scheduler.counters import FairCounters, LocalCounters
from inferlab.scheduler.policies import class_rank, make_policy
from inferlab.scheduler.protocol import QueueObserver, SchedulingPolicy
from inferlab.scheduler.queue import QueuePolicy, WaitQueues
from inferlab.scheduler.shared import CounterSync, SharedCounters


def queue_policy(model: ModelConfig, counters: FairCounters | None = None) -> QueuePolicy:
    queue = model.queue
    aging_s = queue.aging_bound_s

    def scheduling() -> SchedulingPolicy:
        return make_policy(queue.policy, aging_s=aging_s, aging_share=queue.aging_share, horizon_s=queue.max_wait_s,
                           counters=counters)

    return QueuePolicy(
        max_depth=queue.max_depth, max_wait_s=queue.max_wait_s, scheduling=scheduling,
        class_depth={class_rank(name): c.max_depth for name, c in queue.classes.items() if c.max_depth is not None},
        sheddable=frozenset(class_rank(name) for name in queue.sheddable),
        headroom={class_rank(name): c.headroom for name, c in queue.classes.items() if c.headroom},
        aging_s=aging_s if queue.policy in ("tiered", "priority") else None, aging_share=queue.aging_share,
    )


@dataclass
class Queues:
    queues: WaitQueues
    sync: CounterSync | None  # run it in the background when set


def build_queues(models: Iterable[ModelConfig], observer: QueueObserver | None = None, *,
                 settings: SchedulerSettings | None = None, redis: Any | None = None,
                 logger: logging.Logger | None = None) -> Queues:
    """``redis``: the shared client when the counters are merged through it (else local)."""
    settings = settings or SchedulerSettings()
    shared: dict[str, SharedCounters] = {}
    policies = {}
    for model in models:
        counters: FairCounters
        if redis is not None:
            counters = shared[model.name] = SharedCounters()
        else:
            counters = LocalCounters()
        policies[model.name] = queue_policy(model, counters)
    sync = None
    if redis is not None:
        sync = CounterSync(redis, shared, prefix=settings.redis_prefix, interval_s=settings.sync_interval_s,
                           ttl_s=settings.counter_ttl_s, logger=logger or logging.getLogger("inferlab.scheduler"))
    return Queues(WaitQueues(policies, observer=observer), sync)


def uses_redis(settings: SchedulerSettings, redis_configured: bool) -> bool:
    return settings.shared_counters == "redis" or (settings.shared_counters == "auto" and redis_configured)
