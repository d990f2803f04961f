"""Month-end forecasts: Holt-Winters with a weekly season, its interval and its backtest."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from inferlab.metering.forecast import backtest, fit, month_end

WEEK = np.array([1.0, 1.2, 1.3, 1.25, 1.1, 0.4, 0.3])  # weekdays busy, weekends quiet


def _series(days: int, *, level: float = 1000.0, growth: float = 5.0, noise: float = 0.0,
            rng: np.random.Generator | None = None) -> list[float]:
    t = np.arange(days)
    values = (level + growth * t) * WEEK[t % 7]
    if noise:
        assert rng is not None
        values = values + rng.normal(0, noise, days)
    return [max(0.0, float(v)) for v in values]


def test_a_clean_weekly_pattern_is_forecast_almost_exactly() -> None:
    series = _series(70)
    result = backtest(series, holdout=14)
    assert result.days == 14 and result.mape is not None and result.wape is not None
    assert result.mape < 0.05 and result.wape < 0.05
    model = fit(series)
    assert model.method == "holt-winters" and len(model.season) == 7


def test_the_month_end_total_adds_the_forecast_to_what_was_used() -> None:
    first = date(2026, 3, 2)  # a Monday
    series = _series(60)
    daily = {first + timedelta(days=i): v for i, v in enumerate(series)}
    today = first + timedelta(days=59)  # 2026-04-30: the month's last day
    truth_today = series[-1]
    daily[today] = truth_today / 2  # today is half over
    forecast = month_end(daily, today)
    used = sum(v for d, v in daily.items() if d.month == 4)
    assert forecast.used == used
    assert forecast.low >= used and forecast.low <= forecast.expected <= forecast.high
    assert abs(forecast.expected - (used + truth_today / 2)) < 0.05 * truth_today


def test_the_interval_covers_the_truth_about_as_often_as_it_says() -> None:
    rng = np.random.default_rng(5)
    covered, widths, runs = 0, [], 120
    for _ in range(runs):
        series = _series(90, noise=80.0, rng=rng)  # 8 weeks of history, then a month to forecast
        first = date(2026, 1, 5)
        history = {first + timedelta(days=i): v for i, v in enumerate(series[:56])}
        today = first + timedelta(days=56)  # 2026-03-02, nothing used yet today
        history[today] = 0.0
        forecast = month_end(history, today)
        truth = series[55] + sum(series[56:86])  # March 1 (used) + March 2 … 31
        covered += forecast.low <= truth <= forecast.high
        widths.append((forecast.high - forecast.low) / truth)
    assert 0.85 <= covered / runs <= 1.0  # a 95 % interval
    assert float(np.mean(widths)) < 0.35  # the level and trend errors compound over a month: ±~12 % here


def test_short_histories_fall_back_to_simpler_models() -> None:
    assert fit([]).method == "mean" and fit([5.0, 7.0]).method == "mean"
    assert fit([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).method == "holt"
    forecast = month_end({date(2026, 5, 30): 10.0, date(2026, 5, 31): 4.0}, date(2026, 5, 31))
    assert forecast.used == 14.0 and forecast.method == "mean" and forecast.backtest.mape is None
    assert month_end({}, date(2026, 5, 31)).expected == 0.0
