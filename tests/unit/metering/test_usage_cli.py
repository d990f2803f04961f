"""``inferlab usage report|forecast`` against the store ``serve`` uses: the admin filters, JSON and CSV."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering import cli as usage_cli
from inferlab.store import Database, upgrade
from inferlab.store.usage import SqlUsageStore

AT = datetime(2026, 5, 3, 12, tzinfo=UTC)


def _event(n: int, tenant: str, model: str, at: datetime = AT) -> UsageEvent:
    return UsageEvent(id=f"c{n}", time=at, tenant=tenant, user=None, key="k1", tier="pro",
                      route="/v1/chat/completions", model=model, model_version=None, replica="r0", hardware=None,
                      prompt_tokens=100, completion_tokens=10, cached_tokens=0, token_source=TokenSource.ENGINE,
                      queue_ms=None, ttft_ms=None, duration_ms=5.0, status=EventStatus.SUCCESS, http_status=200,
                      price=Decimal("0.25"), hardware_cost=Decimal("0.1"))


async def _seed(data_dir: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'inferlab.db'}")
    await upgrade(database)
    await SqlUsageStore(database).insert_batch([_event(1, "acme", "m1"), _event(2, "acme", "m2"),
                                                _event(3, "globex", "m1", AT + timedelta(days=1))])
    await database.close()


def _app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    usage_cli.register(root)
    return root


def test_report_with_filters_as_json_and_csv(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path))
    runner = CliRunner()
    result = runner.invoke(_app(), ["usage", "report", "--start", "2026-05-01", "--end", "2026-05-31",
                                    "--group-by", "tenant,model", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [(r["tenant"], r["model"], r["requests"], r["price_usd"], r["margin_usd"]) for r in body["data"]] == [
        ("acme", "m1", 1, "0.25", "0.15"), ("acme", "m2", 1, "0.25", "0.15"), ("globex", "m1", 1, "0.25", "0.15")]
    result = runner.invoke(_app(), ["usage", "report", "--start", "2026-05-01", "--end", "2026-05-31",
                                    "--tenant", "globex", "--format", "csv", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["2026-05-04,1,100,10,0,110,0.25,0.1,0.15"]


def test_bad_filters_are_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["usage", "report", "--group-by", "week", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "group_by" in result.output and "Traceback" not in result.output


def test_forecast_prints_one_line_per_tenant(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path))
    result = CliRunner().invoke(_app(), ["usage", "forecast", "--tenant", "acme,nobody", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["tenant"] for line in lines] == ["acme", "nobody"]
