"""``inferlab slo report``: a running gateway's SLO attainment per tier and model — p95s against
their targets, availability, and the error budget's burn rate over each window.

The windows live in the gateway, so the report is read from its ``GET /admin/slo`` with a platform
admin's key (without authentication, any caller may read it)."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp
import typer
from rich.console import Console
from rich.table import Table

slo_app = typer.Typer(help="Service-level objectives per tier and model (features.slo).", no_args_is_help=True)


async def _fetch(url: str, api_key: str) -> Any:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.get(url.rstrip("/") + "/admin/slo", headers=headers) as response):
        body = await response.json(content_type=None)
        if response.status != 200:
            message = body.get("error", {}).get("message") if isinstance(body, dict) else None
            raise RuntimeError(f"HTTP {response.status}: {message or body}")
        return body


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _cell(figures: dict[str, Any] | None, latency: bool) -> str:
    """One SLO in one window: measured against target, attainment, burn rate."""
    if figures is None:
        return "no target"
    if not figures["requests"]:
        return "no requests"
    burn = figures["burn_rate"]
    head = (f"p95 {figures['p95_ms']:,.0f} / {figures['target_ms']:,.0f} ms" if latency and figures["p95_ms"] is not None
            else f"{_percent(figures['attainment'])} / {_percent(figures['objective'])}")
    mark = "ok" if figures["met"] else "MISSED"
    return f"{head}, {_percent(figures['attainment'])} good, burn {burn:.2f}× [{mark}]"


def render(body: dict[str, Any], console: Console) -> None:
    table = Table("tier", "model", "window", "requests", "TTFT", "TPOT", "availability")
    for row in body.get("data", []):
        for window in row["windows"]:
            requests = max((window[slo] or {}).get("requests", 0) for slo in ("ttft", "tpot", "availability"))
            table.add_row(row["tier"], row["model"], f"{window['window_s']:g}s", str(requests),
                          _cell(window["ttft"], True), _cell(window["tpot"], True),
                          _cell(window["availability"], False))
    console.print(table)


@slo_app.command("report")
def report(
    url: str = typer.Option("http://127.0.0.1:8000", help="The gateway's base URL."),
    api_key: str = typer.Option("", envvar="INFERLAB_API_KEY", help="A platform admin's key (or INFERLAB_API_KEY)."),
    as_json: bool = typer.Option(False, "--json", help="Print the gateway's JSON."),
) -> None:
    """Per tier and model and window: p95 against target, attainment, error-budget burn rate."""
    key = api_key or os.environ.get("INFERLAB_API_KEY", "")
    try:
        body = asyncio.run(_fetch(url, key))
    except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: cannot read {url}/admin/slo: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    render(body, Console(width=160))


def register(app: typer.Typer) -> None:
    app.add_typer(slo_app, name="slo")
