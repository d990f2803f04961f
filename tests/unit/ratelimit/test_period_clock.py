"""The quota period names are formatted once per UTC day, and agree with ``periods()``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from inferlab.ratelimit.policy import _PeriodClock, periods


def test_the_clock_agrees_with_periods_and_counts_down() -> None:
    clock = _PeriodClock()
    first = clock.now()
    expected = periods(datetime.now(UTC))
    assert first["d"][0] == expected["d"][0] and first["m"][0] == expected["m"][0]
    assert abs(first["d"][1] - expected["d"][1]) < 1 and abs(first["m"][1] - expected["m"][1]) < 1
    time.sleep(0.01)
    second = clock.now()
    assert second["d"][0] == first["d"][0] and 0 < second["d"][1] < first["d"][1]


def test_the_clock_rolls_over_at_the_end_of_the_day() -> None:
    clock = _PeriodClock()
    clock.now()
    clock._day_end = time.time() - 1  # as if the day had ended
    clock._day = "stale"
    assert clock.now()["d"][0] == periods(datetime.now(UTC))["d"][0]
