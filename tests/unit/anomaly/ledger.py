"""A usage ledger for the detector's tests: intervals of usage events, three replicas of one model
and two tenants, seeded; one replica's time to first token can be raised over chosen intervals."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from inferlab.config.anomaly import AnomalySettings
from inferlab.metering import EventStatus, TokenSource, UsageEvent

START = datetime(2026, 3, 2, tzinfo=UTC)
INTERVAL_S = 60.0
REPLICAS = ("r0", "r1", "r2")


def settings(**changes: object) -> AnomalySettings:
    base: dict[str, object] = {"enabled": True, "interval_s": INTERVAL_S, "lag_s": 0, "season": "none",
                               "min_history": 12, "window": 24, "quiet_intervals": 3, "backfill_s": 0}
    return AnomalySettings.model_validate(base | changes)


def end_of(interval: int) -> datetime:
    return START + timedelta(seconds=(interval + 1) * INTERVAL_S)


def events(intervals: Iterable[int], *, slow: Iterable[int] = (), slow_replica: str = "r2", seed: int = 7,
           per_replica: int = 6) -> list[UsageEvent]:
    """``per_replica`` events per replica per interval, TTFT ~100 ms (±5); ×3 on ``slow_replica``
    in the ``slow`` intervals."""
    rng = random.Random(seed)
    slow = set(slow)
    found = []
    for interval in intervals:
        for replica in REPLICAS:
            for n in range(per_replica):
                at = START + timedelta(seconds=interval * INTERVAL_S + 1 + n * 5)
                ttft = rng.gauss(100, 5) * (3 if interval in slow and replica == slow_replica else 1)
                found.append(UsageEvent(
                    id=f"e{interval}-{replica}-{n}", time=at, tenant=("acme", "globex")[n % 2], user=None, key="k",
                    tier="pro", route="/v1/chat/completions", model="m", model_version=None, replica=replica,
                    hardware=None, prompt_tokens=100 + rng.randint(-5, 5), completion_tokens=50, cached_tokens=0,
                    token_source=TokenSource.ENGINE, queue_ms=0.0, ttft_ms=round(ttft, 3),
                    duration_ms=round(ttft + 400 + rng.gauss(0, 10), 3), status=EventStatus.SUCCESS,
                    http_status=200, price=Decimal("0.000150"), hardware_cost=Decimal(0)))
    return found
