"""The autoscaler's decisions as the pools page shows them (``web.sources.AutoscalerDecisions``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from inferlab.autoscale.service import Autoscaler

ACTIONS = {"up": "scale_up", "down": "scale_down", "hold": "hold"}


class DecisionFeed:
    """Every pool's recent decisions, newest first. The decisions carry the autoscaler's monotonic
    clock; they are shown in UTC wall-clock time, read off against ``wall`` and ``monotonic`` now."""

    def __init__(self, autoscaler: Autoscaler, *, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._autoscaler = autoscaler
        self._wall = wall
        self._monotonic = monotonic

    def recent_decisions(self, limit: int) -> Sequence[Mapping[str, Any]]:
        offset = self._wall() - self._monotonic()
        found = [(decision.at, pool.pool.model, decision)
                 for pool in self._autoscaler.pools for decision in pool.history]
        found.sort(key=lambda entry: entry[0], reverse=True)
        return [{"at": datetime.fromtimestamp(at + offset, UTC).strftime("%Y-%m-%d %H:%M:%S"), "model": model,
                 "action": ACTIONS.get(decision.direction, decision.direction), "from": decision.current,
                 "to": decision.desired, "reason": decision.reason}
                for at, model, decision in found[:limit]]
