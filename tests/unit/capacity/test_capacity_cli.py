"""``inferlab capacity plan`` end to end on the SQLite store ``serve`` writes, seeded with ten days
of usage events with a daily cycle: the recommendation with its deadline and catalogue cost, the
JSON lines with the backtest, and clear errors (too little history, no throughput, bad options)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner, Result

from inferlab.capacity import cli as capacity_cli
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store import Database, upgrade
from inferlab.store.usage import SqlUsageStore


def _events(model: str, hours: int, now: datetime, seed: int) -> list[UsageEvent]:
    """Requests per hour 10 + 60 × a daily bump, Poisson, for the ``hours`` before ``now``'s hour. The
    bump peaks 12 hours from ``now``'s hour, so the plan's "before <deadline>" does not depend on
    the time of day the test runs at."""
    rng = np.random.default_rng(seed)
    end = now.replace(minute=0, second=0, microsecond=0)
    found = []
    for h in range(hours, 0, -1):
        start = end - timedelta(hours=h)
        mean = 10 + 60 * math.exp(-0.5 * (_hours_from_peak(start, now) / 2.5) ** 2)
        count = int(rng.poisson(mean))
        for n in range(count):
            found.append(UsageEvent(
                id=f"{model}-{h}-{n}", time=start + timedelta(seconds=n * 3600 / max(1, count)), tenant="acme",
                user=None, key="k", tier="pro", route="/v1/chat/completions", model=model, model_version=None,
                replica="r0", hardware=None, prompt_tokens=300, completion_tokens=120, cached_tokens=0,
                token_source=TokenSource.ENGINE, queue_ms=0.0, ttft_ms=80.0, duration_ms=900.0,
                status=EventStatus.SUCCESS, http_status=200, price=Decimal("0.0001"), hardware_cost=Decimal(0)))
    return found


def _hours_from_peak(moment: datetime, now: datetime) -> int:
    """Hours of the day between ``moment`` and the bump's peak (0–12)."""
    distance = (moment.hour - (now.hour + 12)) % 24
    return min(distance, 24 - distance)


async def _seed(data_dir: Path, now: datetime) -> None:
    # seeding is set-up, not the store under test: 60 s, not the production 2 s (a loaded machine took longer)
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'inferlab.db'}", timeout_s=60)
    await upgrade(database)
    await SqlUsageStore(database).insert_batch(_events("chat", 10 * 24, now, 1) + _events("fresh", 30, now, 2))
    await database.close()


def _app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    capacity_cli.register(root)
    return root


def test_plan_end_to_end_on_a_seeded_store(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path, datetime.now(UTC)))
    runner = CliRunner()
    base = ["capacity", "plan", "--data-dir", str(tmp_path)]
    result = runner.invoke(_app(), [*base, "--model", "chat", "--throughput", "chat=0.01", "--hardware", "chat=l4",
                                    "--replicas", "chat=1"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("chat: add ") and " × L4 replicas before " in first and " UTC, cost $" in first
    assert "holt-winters (season 24 h) on 240 h; backtest on the last 48 h: MAPE" in result.output

    result = runner.invoke(_app(), [*base, "--model", "chat", "--throughput", "chat=0.01", "--hardware", "chat=l4",
                                    "--replicas", "chat=1", "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    peak = 70 / 3600  # the cycle's peak, per second
    assert plan["needed"] >= math.ceil(peak / (0.01 * 0.7)) and plan["change"] == plan["needed"] - 1
    assert plan["usd_per_hour"] == "0.78"  # the planning catalogue's cheapest on-demand L4
    assert Decimal(plan["monthly_change_usd"]) == Decimal("0.78") * plan["change"] * 730
    assert plan["backtest"]["holdout_hours"] == 48 and 0 < plan["backtest"]["wape"] < 0.5
    deadline = datetime.fromisoformat(plan["deadline"])
    assert 0 <= (deadline - datetime.now(UTC)).total_seconds() <= 36 * 3600
    assert _hours_from_peak(deadline, datetime.now(UTC)) <= 6, deadline  # within the bump, not its trough


def test_the_planning_toolkit_is_calibrated_by_the_measurement(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path, datetime.now(UTC)))
    runner = CliRunner()
    base = ["capacity", "plan", "--data-dir", str(tmp_path), "--model", "chat", "--hardware", "chat=l4",
            "--catalogue-model", "chat=smollm2-135m", "--format", "json"]
    measured = json.loads(runner.invoke(_app(), [*base, "--throughput", "chat=0.01"]).output)
    assert measured["throughput_source"] == "configured" and measured["estimated_requests_per_s"] > 0.01
    assert measured["calibration"] == round(0.01 / measured["estimated_requests_per_s"], 4)
    estimated = json.loads(runner.invoke(_app(), base).output)  # nothing measured: the estimate, flagged
    assert estimated["throughput_source"] == "planning estimate (not measured)" and estimated["calibration"] is None
    assert estimated["replica_requests_per_s"] == measured["estimated_requests_per_s"]
    result = runner.invoke(_app(), [*base[:-2], "--throughput", "chat=0.01"])
    assert "the planning toolkit estimates" in result.output and "measured 0.0" in result.output
    result = runner.invoke(_app(), [*base[:-4], "--catalogue-model", "chat=no-such-model"])
    assert result.exit_code == 1 and "chat: the planning toolkit cannot estimate it: unknown model" in \
        " ".join(result.output.split())


def test_clear_errors_when_a_plan_cannot_be_made(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path, datetime.now(UTC)))
    runner = CliRunner()
    base = ["capacity", "plan", "--data-dir", str(tmp_path)]
    def said(result: Result) -> str:
        return " ".join(result.output.split())  # the error console wraps long lines

    result = runner.invoke(_app(), [*base, "--throughput", "chat=0.01", "--throughput", "fresh=1"])
    assert result.exit_code == 1
    assert result.output.startswith("chat: add ")  # the model that can be planned still is
    assert "cost unknown (set capacity.models.<model>.usd_per_hour or .hardware)" in said(result)
    assert "model 'fresh' has 30 h of usage history; a capacity plan needs at least 96 h" in said(result)
    result = runner.invoke(_app(), [*base, "--model", "chat"])
    assert result.exit_code == 1 and "has no measured replica throughput" in said(result)
    assert "Traceback" not in result.output
    result = runner.invoke(_app(), [*base, "--model", "ghost", "--throughput", "ghost=1"])
    assert result.exit_code == 1 and "model 'ghost' has no usage in the last 28 days" in said(result)
    result = runner.invoke(_app(), [*base, "--throughput", "chat"])
    assert result.exit_code == 2 and "--throughput takes MODEL=VALUE" in said(result)
    result = runner.invoke(_app(), [*base, "--throughput", "chat=fast"])
    assert result.exit_code == 2


def test_an_empty_store_has_nothing_to_plan(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["capacity", "plan", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no model has usage in the last 28 days" in " ".join(result.output.split())
