"""The capacity planner: Holt-Winters on a synthetic seasonal history is backtested within a few
percent (and beats ignoring the season); replicas are sized on the upper forecast at the target
utilisation; the deadline is the first hour short of replicas; too little history is an error
that says how much is needed; a benchmark report over the SLO is refused."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest

from inferlab.capacity.calibration import ReplicaThroughput, from_report
from inferlab.capacity.history import HourlyUsage, ModelHistory, by_model
from inferlab.capacity.planner import NotEnoughHistory, Pool, plan_model
from inferlab.config.capacity import CapacitySettings
from inferlab.errors import InvalidRequest
from inferlab.metering.forecast import backtest

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


def seasonal(days: int, *, seed: int = 1, noise: float = 0.05) -> list[float]:
    """Requests per hour: a working-day peak at 09–17 UTC, quieter weekends, multiplicative noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    hour, weekday = hours % 24, (hours // 24) % 7
    daily = 200 + 600 * np.exp(-0.5 * ((hour - 13) / 3.0) ** 2)
    weekly = np.where(weekday >= 5, 0.5, 1.0)
    return [float(v) for v in daily * weekly * rng.normal(1, noise, len(hours)).clip(0.5)]


def history(series: list[float], model: str = "m") -> ModelHistory:
    return ModelHistory(model, MONDAY, tuple(series), 500.0, 200.0)


def test_the_forecast_is_backtested_within_a_few_percent_on_seasonal_history() -> None:
    series = seasonal(28)
    weekly = backtest(series, 48, period=168)
    assert weekly.mape is not None and weekly.wape is not None and weekly.smape is not None
    assert weekly.wape < 0.08 and weekly.smape < 0.10 and weekly.mape < 0.10
    flat = backtest(series, 48, period=0)  # the same model without a season: far worse
    assert flat.wape is not None and flat.wape > 3 * weekly.wape


def test_replicas_are_sized_on_the_upper_forecast_with_a_deadline_and_a_cost() -> None:
    settings = CapacitySettings(target_utilisation=0.5, horizon_days=7, holdout_hours=48)
    now = MONDAY + timedelta(days=28, hours=3, minutes=20)  # Monday 03:20: the history ends at 03:00
    pool = Pool(3, ReplicaThroughput(0.1, "configured"), "L4", Decimal("0.78"))  # 540 req/h at 50 %
    plan = plan_model(history(seasonal(29)[:28 * 24 + 3]), pool, settings, now)
    peak_rps = 800 * 1.0 / 3600  # the pattern's weekday peak, per second
    assert math.ceil(peak_rps / 0.05) <= plan.needed <= math.ceil(1.3 * peak_rps / 0.05)  # 5–6 replicas
    assert plan.deadline is not None and plan.deadline.weekday() == 0 and 7 <= plan.deadline.hour <= 12
    assert plan.monthly_change_usd == Decimal("0.78") * plan.change * 730
    assert plan.method == "holt-winters" and plan.season_hours == 168
    assert plan.recommendation.startswith(f"m: add {plan.change} × L4 replicas before Monday 2026-03-30 "
                                          f"{plan.deadline.hour:02d}:00 UTC, cost ${plan.monthly_change_usd:,.0f}/month")
    body = plan.as_json()
    assert body["backtest"]["holdout_hours"] == 48 and body["backtest"]["wape"] < 0.1


def test_an_oversized_pool_is_told_what_it_saves() -> None:
    settings = CapacitySettings(target_utilisation=0.7)
    pool = Pool(20, ReplicaThroughput(1.0, "configured"), "L4", Decimal(1))
    plan = plan_model(history(seasonal(10)), pool, settings, MONDAY + timedelta(days=10))
    assert plan.needed == 1 and plan.change == -19 and plan.deadline is None
    assert plan.recommendation.startswith("m: remove 19 × L4 replicas, saves $13,870/month")


def test_too_little_history_says_how_much_is_needed() -> None:
    settings = CapacitySettings(holdout_hours=48)
    pool = Pool(1, ReplicaThroughput(1.0, "configured"), None, None)
    with pytest.raises(NotEnoughHistory, match="has 60 h of usage history; a capacity plan needs at least 96 h"):
        plan_model(history(seasonal(3)[:60]), pool, settings, MONDAY + timedelta(hours=60))


def test_hourly_rows_become_series_with_idle_hours_as_zero() -> None:
    rows = [HourlyUsage("m", MONDAY + timedelta(hours=h), 10 * h, 100 * h, 10 * h) for h in (1, 2, 5)]
    (found,) = by_model(rows, MONDAY + timedelta(hours=7)).values()
    assert found.first == MONDAY + timedelta(hours=1)
    assert found.requests == (10.0, 20.0, 0.0, 0.0, 50.0, 0.0)
    assert found.mean_prompt_tokens == 10 and found.mean_completion_tokens == 1


def test_a_benchmark_report_is_believed_only_within_the_slo(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    report.write_bytes(orjson.dumps({"request_throughput": 3.2, "p95_ttft_ms": 850.0}))
    assert from_report(report, 1000) == ReplicaThroughput(3.2, str(report))
    with pytest.raises(InvalidRequest, match="p95 TTFT 850 ms is over the SLO's 500 ms"):
        from_report(report, 500)
    report.write_bytes(b"{}")
    with pytest.raises(InvalidRequest, match="no request_throughput"):
        from_report(report, 1000)
