"""``inferlab usage report|forecast``: the admin report and forecasts, from the store (or the
analytics) ``serve`` uses, as the local operator.

``report`` takes the filters of ``GET /admin/usage`` (``--group-by``, ``--tenant``, ``--model``,
``--key``, ``--tier``, ``--replica``, ``--status``, comma-separated) and prints JSON or CSV.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp
import orjson
import typer

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail
from inferlab.errors import InferLabError
from inferlab.metering.report import parse_report, report_csv, report_json
from inferlab.metering.usage_build import UsageServices, build_usage

T = TypeVar("T")


def _run(config: Path | None, profile: str | None, data_dir: Path | None,
         work: Callable[[UsageServices], Awaitable[T]]) -> T:
    from inferlab.auth.stack import migrate_or_check, open_database
    from inferlab.config import ConfigError, load_settings
    from inferlab.lifecycle import Lifecycle

    try:
        settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
    except ConfigError as exc:
        fail(str(exc), 2)

    async def main() -> T:
        database = open_database(settings.auth, settings.data_dir, settings.database_url)
        try:
            await migrate_or_check(database, settings.auth.auto_migrate)
            async with aiohttp.ClientSession() as session:
                lifecycle = Lifecycle()
                usage = build_usage(settings, database=database, session=session, lifecycle=lifecycle,
                                    logger=logging.getLogger("inferlab.usage"), jobs=False)
                assert usage is not None
                async with lifecycle.running():
                    return await work(usage)
        finally:
            await database.close()

    try:
        return asyncio.run(main())
    except InferLabError as exc:
        fail(exc.message)


def register(app: typer.Typer) -> None:
    usage_app = typer.Typer(help="Usage reports and month-end forecasts (every tenant).", no_args_is_help=True)
    app.add_typer(usage_app, name="usage")

    @usage_app.command("report")
    def report(
        start: str | None = typer.Option(None, help="First day, YYYY-MM-DD (UTC); default: the first of this month."),
        end: str | None = typer.Option(None, help="Last day, included; default: today."),
        group_by: str = typer.Option("day", "--group-by",
                                     help="Comma-separated: day, hour, tenant, tier, model, key, replica, status."),
        tenant: str | None = typer.Option(None, help="Only these tenants (comma-separated)."),
        model: str | None = typer.Option(None, help="Only these models."),
        key: str | None = typer.Option(None, help="Only these key ids."),
        tier: str | None = typer.Option(None, help="Only these tiers."),
        replica: str | None = typer.Option(None, help="Only these replicas."),
        status: str | None = typer.Option(None, help="Only these statuses (success, error, disconnect, cancelled)."),
        output: str = typer.Option("json", "--format", help="json or csv."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Usage with list price, hardware cost and margin, from the rollups."""
        named = {"start": start, "end": end, "group_by": group_by, "tenant": tenant, "model": model, "key": key,
                 "tier": tier, "replica": replica, "status": status, "format": output}
        try:
            parsed = parse_report({k: v for k, v in named.items() if v is not None}, "admin")
        except InferLabError as exc:
            fail(exc.message, 2)

        async def work(usage: UsageServices) -> str:
            rows = await usage.analytics.usage(parsed.query)
            if parsed.format == "csv":
                return report_csv(rows, parsed.query, "admin")
            return orjson.dumps(report_json(rows, parsed.query, "admin")).decode() + "\n"

        typer.echo(_run(config, profile, data_dir, work), nl=False)

    @usage_app.command("forecast")
    def forecast(
        tenant: str | None = typer.Option(None, help="Only these tenants (comma-separated)."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Each tenant's month-end tokens and spend, with a 95 % interval and the backtest's error (JSON lines)."""
        tenants = tuple(t for t in tenant.split(",") if t) if tenant else None

        async def work(usage: UsageServices) -> str:
            found = await usage.forecaster.forecast(datetime.now(UTC).date(), tenants)
            return "".join(orjson.dumps(f.as_json()).decode() + "\n" for f in found)

        typer.echo(_run(config, profile, data_dir, work), nl=False)
