"""`inferlab billing ...` against the store `serve` uses: an account, usage, a draft, a credit,
finalisation, payment by hand, the invoice as JSON, HTML and PDF, the log, and the errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from inferlab.auth.model import Tenant
from inferlab.billing import cli as billing_cli
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store import Database, SqlIdentityStore, upgrade
from inferlab.store.usage import SqlUsageStore

AT = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    billing_cli.register(root)
    return root


def run(*args: str, data_dir: Path, code: int = 0) -> str:
    result = CliRunner().invoke(_app(), ["billing", *args, "--data-dir", str(data_dir)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


async def _seed(data_dir: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'inferlab.db'}")
    await upgrade(database)
    await SqlIdentityStore(database).add_tenant(Tenant("acme", "Acme", AT))
    await SqlUsageStore(database).insert_batch([UsageEvent(
        id=f"ev-{uuid.uuid4().hex}", time=AT, tenant="acme", user=None, key=None, tier="free",
        route="/v1/chat/completions", model="m", model_version=None, replica=None, hardware=None,
        prompt_tokens=3_000_000, completion_tokens=0, cached_tokens=0, token_source=TokenSource.ENGINE,
        queue_ms=None, ttft_ms=None, duration_ms=1.0, status=EventStatus.SUCCESS, http_status=200,
        price=Decimal(0), hardware_cost=Decimal(0))])
    await database.close()


def test_the_billing_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(_seed(data))
    config = tmp_path / "inferlab.yaml"
    config.write_text("pricing: {models: {m: {input_per_million: 1.25}}}\n"
                      "billing: {enabled: true, plans: {payg: [{}], pro: [{flat_fee: 9}]}}\n")
    common = ("--config", str(config))
    assert json.loads(run("account", "acme", "--plan", "pro", *common, data_dir=data))["plan"] == "pro"
    draft = json.loads(run("draft", "acme", "--at", "2026-01-15T00:00:00Z", *common, data_dir=data))
    assert (draft["status"], draft["total"]) == ("draft", "12.75")  # 9 + 3 M × 1.25 / M
    run("credit", "acme", "0.75", "--reason", "welcome", *common, data_dir=data)
    done = json.loads(run("finalize", draft["id"], *common, data_dir=data))
    assert (done["status"], done["credits_applied"], done["total"]) == ("finalized", "0.75", "12.00")
    paid = json.loads(run("paid", draft["id"], *common, data_dir=data))
    assert paid["status"] == "paid" and paid["amount_paid"] == "12.00"
    [listed] = [json.loads(line) for line in run("invoices", "--tenant", "acme", *common, data_dir=data).splitlines()]
    assert listed["id"] == draft["id"]
    html, pdf = tmp_path / "invoice.html", tmp_path / "invoice.pdf"
    run("show", draft["id"], "--html", str(html), "--pdf", str(pdf), *common, data_dir=data)
    assert "12.00" in html.read_text() and pdf.read_bytes().startswith(b"%PDF-")
    actions = {json.loads(line)["action"] for line in run("log", "--tenant", "acme", *common, data_dir=data).splitlines()}
    assert {"account.update", "invoice.draft", "credit.add", "invoice.finalize", "invoice.paid"} <= actions
    assert "No such tenant" in run("account", "nobody", "--plan", "pro", *common, data_dir=data, code=1)
    assert "No such invoice" in run("void", "inv_nope", *common, data_dir=data, code=1)
    assert "--at" in run("draft", "acme", "--at", "soon", *common, data_dir=data, code=2)
