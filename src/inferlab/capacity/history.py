"""A model's demand history: requests per UTC hour from the usage ledger's hourly rollups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HourlyUsage:
    model: str
    hour: datetime  # the hour's start, UTC
    requests: int
    prompt_tokens: int
    completion_tokens: int


class DemandHistory(Protocol):
    async def hourly(self, start: datetime, end: datetime) -> list[HourlyUsage]:
        """Every model's usage per hour with ``start <= hour < end``."""
        ...


@dataclass(frozen=True, slots=True)
class ModelHistory:
    model: str
    first: datetime  # the first hour with usage
    requests: tuple[float, ...]  # per hour from ``first`` to the last complete hour, idle hours 0
    mean_prompt_tokens: float
    mean_completion_tokens: float

    @property
    def hours(self) -> int:
        return len(self.requests)


def by_model(rows: Sequence[HourlyUsage], end: datetime) -> Mapping[str, ModelHistory]:
    """Each model's hourly series from its first hour with usage up to ``end`` (exclusive)."""
    grouped: dict[str, dict[datetime, HourlyUsage]] = {}
    for row in rows:
        grouped.setdefault(row.model, {})[row.hour] = row
    found = {}
    for model, hours in grouped.items():
        first = min(hours)
        count = int((end - first) / HOUR)
        series = tuple(float(hours[first + i * HOUR].requests) if first + i * HOUR in hours else 0.0
                       for i in range(count))
        requests = sum(r.requests for r in hours.values()) or 1
        found[model] = ModelHistory(model, first, series, sum(r.prompt_tokens for r in hours.values()) / requests,
                                    sum(r.completion_tokens for r in hours.values()) / requests)
    return found
