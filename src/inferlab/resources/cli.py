"""``inferlab resources report``: a running gateway's pools, per tenant — guaranteed, held,
borrowed, refused — its utilisation, and scaling advice when guarantees exceed capacity.

The allocator's state lives in the gateway (or in Redis), so the report is read from the
gateway's ``GET /admin/resources`` with an admin key (platform admins see every tenant).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp
import typer
from rich.console import Console
from rich.table import Table

resources_app = typer.Typer(help="Per-tenant shares of the pools' capacity (features.resources).",
                            no_args_is_help=True)


async def _fetch(url: str, api_key: str) -> Any:
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.get(url.rstrip("/") + "/admin/resources", headers={"Authorization": f"Bearer {api_key}"})
                as response):
        body = await response.json(content_type=None)
        if response.status != 200:
            message = body.get("error", {}).get("message") if isinstance(body, dict) else None
            raise RuntimeError(f"HTTP {response.status}: {message or body}")
        return body


def _amount(value: dict[str, int] | None) -> str:
    return "—" if value is None else f"{value['sequences']} seq / {value['kv_tokens']:,} KV"


@resources_app.command("report")
def report(
    url: str = typer.Option("http://127.0.0.1:8000", help="The gateway's base URL."),
    api_key: str = typer.Option("", envvar="INFERLAB_API_KEY", help="An admin key (or INFERLAB_API_KEY)."),
    as_json: bool = typer.Option(False, "--json", help="Print the gateway's JSON."),
) -> None:
    """Per pool and tenant: guaranteed, held, borrowed, refused; utilisation; scaling advice."""
    key = api_key or os.environ.get("INFERLAB_API_KEY", "")
    if not key:
        typer.echo("error: pass --api-key (or set INFERLAB_API_KEY) with an admin key", err=True)
        raise typer.Exit(2)
    try:
        body = asyncio.run(_fetch(url, key))
    except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: cannot read {url}/admin/resources: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    console = Console()
    for pool in body.get("data", []):
        console.print(f"[bold]{pool['pool']}[/bold]: capacity {_amount(pool['capacity'])}, in flight "
                      f"{_amount(pool['in_flight'])}, guaranteed {_amount(pool['guaranteed'])}")
        table = Table("tenant", "guarantee", "limit", "held", "borrowed", "admitted", "refused")
        for tenant in pool["tenants"]:
            refused = ", ".join(f"{k} {v}" for k, v in tenant["refused"].items()) or "0"
            table.add_row(tenant["tenant"], _amount(tenant["guarantee"]), _amount(tenant["limit"]),
                          _amount(tenant["held"]), _amount(tenant["borrowed"]), str(tenant["admitted"]), refused)
        console.print(table)
        samples = pool.get("utilisation") or []
        capacity = pool["capacity"]["sequences"] or 1
        if samples:
            mean = sum(s["sequences"] for s in samples) / len(samples) / capacity
            console.print(f"utilisation over the last {len(samples)} samples: {mean:.0%} of the sequences")
        scaling = pool.get("scaling")
        if scaling:
            short = scaling["shortfall"]
            console.print(f"[yellow]guarantees exceed capacity by {_amount(short)}[/yellow]")
            for option in scaling["options"]:
                cost = f", ${option['usd_per_month']:,.0f}/month" if option.get("usd_per_month") else ""
                console.print(f"  add {option['replicas']} × {option['hardware']}{cost}")


def register(app: typer.Typer) -> None:
    app.add_typer(resources_app, name="resources")
