"""``scheduler:``: what the wait queues share across gateway replicas. Each pool's own queue
(depth, wait, policy, aging, shedding) is the model's ``queue:`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel


class SchedulerSettings(StrictModel):
    shared_counters: Literal["auto", "local", "redis"] = Field(
        "auto", description="fair-queuing counters: redis (shared by every gateway), local (this process), "
                            "auto: redis when redis_url is set")
    sync_interval_s: float = Field(0.2, gt=0, le=60, description="how often counters are merged through Redis")
    counter_ttl_s: float = Field(86_400.0, gt=0, description="a pool's shared counters expire this long after "
                                                             "their last update")
    redis_prefix: str = Field("inferlab:sched:", min_length=1)
