"""Billing periods partition time in the tenant's zone: across DST changes, month ends, leap days."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from inferlab.billing.periods import Period, period_of, periods_between, previous

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago",
         "Pacific/Chatham", "America/Havana", "Africa/Casablanca", "Asia/Tehran"]
MOMENTS = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001 (naive bounds, aware values)


@settings(max_examples=250, deadline=None)
@given(MOMENTS, st.sampled_from(ZONES))
def test_the_period_of_a_moment_holds_it_and_its_neighbours_touch(moment: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    period = period_of(moment, tz)
    assert moment in period
    assert period.start < period.end
    assert period_of(period.end, tz).start == period.end  # half-open: the end belongs to the next period
    assert previous(period, tz).end == period.start
    assert period_of(period.start, tz) == period
    local = period.start.astimezone(tz)
    assert local.day == 1 or local.hour != 0  # the 1st, or the instant the clocks jumped past its midnight


@settings(max_examples=100, deadline=None)
@given(MOMENTS, st.integers(1, 2000), st.sampled_from(ZONES))
def test_periods_between_partition_an_interval(start: datetime, hours: int, zone: str) -> None:
    end = start + timedelta(hours=hours * 7)
    found = list(periods_between(start, end, ZoneInfo(zone)))
    assert found[0].start <= start < found[0].end
    assert found[-1].start < end <= found[-1].end
    for a, b in itertools.pairwise(found):
        assert a.end == b.start


def test_dst_month_ends_and_leap_days() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    march = period_of(datetime(2024, 3, 31, 12, tzinfo=UTC), berlin)  # the DST change is inside March
    assert march == Period(datetime(2024, 2, 29, 23, tzinfo=UTC), datetime(2024, 3, 31, 22, tzinfo=UTC))
    assert march.end - march.start == timedelta(days=31, hours=-1)
    february = period_of(datetime(2024, 2, 29, 22, 59, tzinfo=UTC), berlin)  # leap day, local 23:59
    assert february.end == march.start and (february.end - february.start) == timedelta(days=29)
    kolkata = period_of(datetime(2026, 1, 31, 18, 29, tzinfo=UTC), ZoneInfo("Asia/Kolkata"))
    assert kolkata.end == datetime(2026, 1, 31, 18, 30, tzinfo=UTC)  # a half-hour boundary
    # Santiago's clocks jump at midnight: a boundary at the instant of the jump, still partitioning
    santiago = ZoneInfo("America/Santiago")
    for month in range(1, 13):
        period = period_of(datetime(2026, month, 15, tzinfo=UTC), santiago)
        assert period_of(period.end, santiago).start == period.end
