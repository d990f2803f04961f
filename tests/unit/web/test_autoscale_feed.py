"""The pools page's view of the autoscaler: every pool's decisions, newest first, in UTC."""

from __future__ import annotations

import asyncio

from inferlab.autoscale.service import Autoscaler
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.web.autoscale_feed import DecisionFeed
from tests.unit.autoscale.test_actuation import ZERO, Harness, until


async def test_decisions_of_a_scale_from_zero_are_listed_newest_first_in_utc() -> None:
    async with Harness(ZERO) as h:
        feed = DecisionFeed(h.loop, wall=lambda: 1_764_806_400.0, monotonic=asyncio.get_running_loop().time)
        lease = await asyncio.wait_for(h.queues.acquire(h.pool, RoutingRequest({})), 5)
        h.pool.release(lease, Outcome.SUCCESS)
        await until(lambda: any(d.direction == "up" for d in h.scaler.history))
        shown = feed.recent_decisions(50)
        assert shown and all(entry["model"] == "m" for entry in shown)
        ups = [entry for entry in shown if entry["action"] == "scale_up"]
        assert ups and (ups[0]["from"], ups[0]["to"]) == (0, 1) and ups[0]["reason"]
        assert all(entry["at"].startswith("2025-12-0") for entry in shown)  # the wall clock given, in UTC
        assert [entry["at"] for entry in shown] == sorted((entry["at"] for entry in shown), reverse=True)
        assert len(feed.recent_decisions(1)) == 1


def test_without_pools_there_is_nothing_to_show() -> None:
    assert DecisionFeed(Autoscaler([])).recent_decisions(10) == []
