"""Billing periods: calendar months in the tenant's time zone, as half-open UTC intervals.

A period is ``[start, end)``: its start is local midnight on the 1st, its end the next month's
start, both computed the same way, so consecutive periods share their boundary and the periods
partition time — across DST changes, month ends and leap days alike. Where local midnight does not
exist (a DST jump at midnight) the boundary is the instant the clocks jump; where it occurs twice,
the first. ``period_of`` checks the instant against the bounds it computed and steps to the
neighbour when a repeated local hour placed it wrongly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True, order=True)
class Period:
    start: datetime  # UTC, included
    end: datetime  # UTC, excluded

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def key(self) -> str:
        """``YYYYMMDD`` of the start in UTC (unique per tenant: periods never overlap)."""
        return self.start.strftime("%Y%m%d%H")


def _month_start(year: int, month: int, zone: ZoneInfo) -> datetime:
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def period_of(moment: datetime, zone: ZoneInfo) -> Period:
    """The period holding ``moment`` (timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware instant")
    local = moment.astimezone(zone)
    year, month = local.year, local.month
    start, end = _month_start(year, month, zone), _month_start(year, month + 1, zone)
    while moment < start:
        month -= 1
        start, end = _month_start(year, month, zone), start
    while moment >= end:
        month += 1
        start, end = end, _month_start(year, month + 1, zone)
    return Period(start, end)


def periods_between(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[Period]:
    """Every period that overlaps ``[start, end)``, in order."""
    if end <= start:
        return
    period = period_of(start, zone)
    while period.start < end:
        yield period
        period = period_of(period.end, zone)


def previous(period: Period, zone: ZoneInfo) -> Period:
    return period_of(period.start - timedelta(microseconds=1), zone)
