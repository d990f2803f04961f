"""The wait queues from the models' typed queue settings (called by the composition root)."""

from __future__ import annotations

from collections.abc import Iterable

from inferlab.config import ModelConfig
from inferlab.scheduler.protocol import QueueObserver
from inferlab.scheduler.queue import QueuePolicy, WaitQueues


def queue_policy(model: ModelConfig) -> QueuePolicy:
    return QueuePolicy(max_depth=model.queue.max_depth, max_wait_s=model.queue.max_wait_s)


def build_queues(models: Iterable[ModelConfig], observer: QueueObserver | None = None) -> WaitQueues:
    return WaitQueues({model.name: queue_policy(model) for model in models}, observer=observer)
