"""``inferlab capacity plan``: each model's replicas for the next days, from the usage ledger
``serve`` writes, with the forecast's backtested error and the recommendation.

    inferlab capacity plan --throughput chat=2.5 --hardware chat=l4
    inferlab capacity plan --benchmark chat=bench/chat-l4.json --format json

Exit 1 with a clear message when a model cannot be planned (too little history, no throughput).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson
import typer

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail
from inferlab.capacity.planner import CapacityPlanner, ModelPlan
from inferlab.config.capacity import ModelCapacity
from inferlab.errors import InferLabError


def _pairs(values: list[str], option: str) -> dict[str, str]:
    found = {}
    for value in values:
        model, sep, setting = value.partition("=")
        if not sep or not model or not setting:
            fail(f"{option} takes MODEL=VALUE, got {value!r}", 2)
        found[model] = setting
    return found


def _overrides(throughput: list[str], benchmark: list[str], hardware: list[str], price: list[str],
               replicas: list[str], catalogue_model: list[str], slo_ttft_ms: float | None,
               base: dict[str, ModelCapacity]) -> dict[str, ModelCapacity]:
    changes: dict[str, dict[str, object]] = {}
    try:
        for model, value in _pairs(throughput, "--throughput").items():
            changes.setdefault(model, {})["replica_requests_per_s"] = float(value)
        for model, value in _pairs(benchmark, "--benchmark").items():
            changes.setdefault(model, {})["benchmark_report"] = Path(value)
        for model, value in _pairs(hardware, "--hardware").items():
            changes.setdefault(model, {})["hardware"] = value
        for model, value in _pairs(price, "--usd-per-hour").items():
            changes.setdefault(model, {})["usd_per_hour"] = Decimal(value)
        for model, value in _pairs(replicas, "--replicas").items():
            changes.setdefault(model, {})["replicas"] = int(value)
        for model, value in _pairs(catalogue_model, "--catalogue-model").items():
            changes.setdefault(model, {})["catalogue_model"] = value
    except (ValueError, InvalidOperation) as exc:
        fail(f"bad option value: {exc}", 2)
    found = {}
    for model, change in changes.items():
        current = base.get(model, ModelCapacity()).model_dump()
        if "replica_requests_per_s" in change:
            current["benchmark_report"] = None
        if "benchmark_report" in change:
            current["replica_requests_per_s"] = None
        if slo_ttft_ms is not None:
            change["slo_ttft_ms"] = slo_ttft_ms
        try:
            found[model] = ModelCapacity.model_validate(current | change)
        except ValueError as exc:
            fail(f"{model}: {exc}", 2)
    return found


def _text(plans: list[ModelPlan]) -> str:
    lines = []
    for plan in plans:
        test = plan.backtest
        error = (f"backtest on the last {test.days} h: MAPE {test.mape:.1%}, WAPE {test.wape:.1%}, "
                 f"sMAPE {test.smape:.1%}" if test.mape is not None and test.wape is not None
                 and test.smape is not None else "backtest: no usage in the held-out hours")
        calibration = plan.pool.calibration
        if calibration is not None:
            error += (f"; the planning toolkit estimates {plan.pool.estimated_requests_per_s:.3g} req/s a replica: "
                      f"measured {calibration:.2f}× that")
        lines += [plan.recommendation,
                  (f"  {plan.pool.replicas} → {plan.needed} replicas at {plan.pool.throughput.requests_per_s:g} req/s "
                   f"each ({plan.pool.throughput.source}), planned at {plan.target_utilisation:.0%}; "
                   f"{plan.method} (season {plan.season_hours} h) on {plan.history_hours} h; {error}")]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    capacity_app = typer.Typer(help="Capacity plans from the usage history.", no_args_is_help=True)
    app.add_typer(capacity_app, name="capacity")

    @capacity_app.command("plan")
    def plan(
        model: str | None = typer.Option(None, help="Only these models (comma-separated); default: every model "
                                                    "with usage."),
        throughput: list[str] = typer.Option([], help="MODEL=REQ/S: one replica's measured throughput within the SLO."),
        benchmark: list[str] = typer.Option([], help="MODEL=PATH: an `inferlab bench` JSON report of one replica."),
        hardware: list[str] = typer.Option([], help="MODEL=ACCELERATOR: the planning catalogue's id (e.g. l4)."),
        usd_per_hour: list[str] = typer.Option([], "--usd-per-hour", help="MODEL=USD: one replica's hourly cost."),
        replicas: list[str] = typer.Option([], help="MODEL=N: replicas running now (default: the configuration)."),
        catalogue_model: list[str] = typer.Option([], "--catalogue-model",
                                                  help="MODEL=ID: the planning catalogue's model (e.g. llama-3.1-8b), "
                                                       "for the toolkit's estimate beside the measurement."),
        slo_ttft_ms: float | None = typer.Option(None, help="The p95 TTFT a benchmark report must have met."),
        output: str = typer.Option("text", "--format", help="text or json (JSON lines)."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Replicas each model needs over the next days (Holt-Winters on its hourly requests, backtested),
        when to add them, and what it costs."""
        from inferlab.auth.stack import migrate_or_check, open_database
        from inferlab.capacity.build import pools
        from inferlab.config import ConfigError, load_settings
        from inferlab.planning.catalogue import load_catalogue
        from inferlab.store.capacity import SqlDemandHistory

        if output not in ("text", "json"):
            fail(f"--format must be text or json, got {output!r}", 2)
        try:
            settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
        except ConfigError as exc:
            fail(str(exc), 2)
        overrides = _overrides(throughput, benchmark, hardware, usd_per_hour, replicas, catalogue_model, slo_ttft_ms,
                               settings.capacity.models)
        models = tuple(m for m in model.split(",") if m) if model else None

        async def main() -> list[ModelPlan | InferLabError]:
            database = open_database(settings.auth, settings.data_dir, settings.database_url)
            try:
                await migrate_or_check(database, settings.auth.auto_migrate)
                planner = CapacityPlanner(SqlDemandHistory(database), settings.capacity,
                                          pools(settings, load_catalogue(), overrides))
                return list(await planner.plan(datetime.now(UTC), models))
            finally:
                await database.close()

        try:
            results = asyncio.run(main())
        except InferLabError as exc:
            fail(exc.message)
        if not results:
            fail(f"no model has usage in the last {settings.capacity.history_days} days: nothing to plan from")
        plans = [r for r in results if isinstance(r, ModelPlan)]
        if output == "json":
            typer.echo("".join(orjson.dumps(p.as_json()).decode() + "\n" for p in plans), nl=False)
        elif plans:
            typer.echo(_text(plans), nl=False)
        errors = [r for r in results if not isinstance(r, ModelPlan)]
        if errors:
            fail("\n".join(e.message for e in errors))
