"""``inferlab billing ...``: the billing jobs and the invoices of the store ``serve`` uses, as the
local operator (suspensions by dunning are audited with the billing actor). Output is JSON.

    inferlab billing draft TENANT [--at ISO]      rate a period now (its draft)
    inferlab billing close [--at ISO]             finalize every period past its grace window
    inferlab billing collect [--at ISO]           payment attempts and dunning, once
    inferlab billing invoices [--tenant T] [--status S]
    inferlab billing show ID [--html FILE]        one invoice (JSON, or HTML to a file)
    inferlab billing finalize|void|paid ID
    inferlab billing credit TENANT AMOUNT [--reason R]
    inferlab billing account TENANT [--plan P] [--timezone Z] [--email E]
    inferlab billing reconcile | margins [--at ISO] [--tenant T] | log [--tenant T]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail
from inferlab.errors import InferLabError

T = TypeVar("T")
AtOpt = typer.Option(None, "--at", help="An instant (ISO 8601 with a zone); default: now.")


def _emit(row: Any) -> None:
    print(orjson.dumps(row).decode())


def _at(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    try:
        found = datetime.fromisoformat(raw)
    except ValueError:
        fail("--at takes an ISO 8601 instant, e.g. 2026-02-01T00:00:00Z", 2)
        raise
    if found.tzinfo is None:
        fail("--at needs a time zone (e.g. Z)", 2)
    return found


def _run(config: Path | None, profile: str | None, data_dir: Path | None, work: Callable[[Any], Awaitable[T]]) -> T:
    import aiohttp

    from inferlab.auth.stack import migrate_or_check
    from inferlab.billing.build import build_billing
    from inferlab.config import ConfigError, load_settings
    from inferlab.metering.pricebook import PriceBook
    from inferlab.services import build_admin_services

    try:
        settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise

    async def main() -> T:
        admin = build_admin_services(settings)
        try:
            await migrate_or_check(admin.auth.database, settings.auth.auto_migrate)
            async with aiohttp.ClientSession() as session:
                billing = build_billing(settings, admin.auth.database, PriceBook(settings.pricing), session=session,
                                        lifecycle=None, tenant_admin=admin.tenant_admin, directory=admin.tenants,
                                        logger=logging.getLogger("inferlab.billing"), jobs=False)
                await billing.engine.refresh_plans()
                return await work(billing)
        finally:
            await admin.auth.database.close()

    try:
        return asyncio.run(main())
    except InferLabError as exc:
        fail(exc.message)
        raise


def register(app: typer.Typer) -> None:
    billing_app = typer.Typer(help="Invoices from metered usage, payments and dunning.", no_args_is_help=True)
    app.add_typer(billing_app, name="billing")

    @billing_app.command("draft")
    def draft(tenant: str, at: str | None = AtOpt, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
              data_dir: Path | None = DataDirOpt) -> None:
        """Rate the tenant's period holding --at now: its draft invoice."""
        async def work(b: Any) -> None:
            period = await b.engine.period_of(tenant, _at(at))
            _emit((await b.engine.draft(tenant, period)).as_json(admin=True))

        _run(config, profile, data_dir, work)

    @billing_app.command("close")
    def close(at: str | None = AtOpt, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
              data_dir: Path | None = DataDirOpt) -> None:
        """Finalize every period past its grace window (what `serve`'s billing job does)."""
        async def work(b: Any) -> None:
            for invoice in await b.engine.close_due(_at(at)):
                _emit(invoice.as_json(admin=True))

        _run(config, profile, data_dir, work)

    @billing_app.command("collect")
    def collect(at: str | None = AtOpt, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                data_dir: Path | None = DataDirOpt) -> None:
        """Make the payment attempts that are due and apply dunning (suspensions), once."""
        async def work(b: Any) -> None:
            outcome = await b.collector.run_once(_at(at))
            _emit({"attempted": outcome.attempted, "paid": outcome.paid, "failed": outcome.failed,
                   "suspended": outcome.suspended})

        _run(config, profile, data_dir, work)

    @billing_app.command("invoices")
    def invoices(tenant: str | None = typer.Option(None, help="Only this tenant."),
                 status: str | None = typer.Option(None, help="draft, finalized, paid, void or uncollectible."),
                 limit: int = typer.Option(100, min=1, max=1000), config: Path | None = ConfigOpt,
                 profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt) -> None:
        """List invoices, newest period first (one JSON object a line)."""
        from inferlab.billing.invoice import STATES

        if status is not None and status not in STATES:
            fail(f"--status is one of {', '.join(STATES)}", 2)

        async def work(b: Any) -> None:
            for invoice in await b.engine.store.invoices(tenant, states=[status] if status else None, limit=limit):
                _emit(invoice.as_json(admin=True))

        _run(config, profile, data_dir, work)

    @billing_app.command("show")
    def show(invoice_id: str, html: Path | None = typer.Option(None, help="Write the invoice as HTML here."),
             pdf: Path | None = typer.Option(None, help="Write the invoice as PDF here (the `pdf` extra)."),
             config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
             data_dir: Path | None = DataDirOpt) -> None:
        """One invoice as JSON (and rendered as HTML or PDF into a file)."""
        from inferlab.billing.render import invoice_html

        async def work(b: Any) -> Any:
            return await b.engine.get(invoice_id)

        invoice = _run(config, profile, data_dir, work)
        if html is not None:
            html.write_text(invoice_html(invoice), encoding="utf-8")
        if pdf is not None:
            from inferlab.billing.render import invoice_pdf

            pdf.write_bytes(invoice_pdf(invoice))
        _emit(invoice.as_json(admin=True))

    def _change(verb: str) -> Callable[..., None]:
        def command(invoice_id: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                    data_dir: Path | None = DataDirOpt) -> None:
            async def work(b: Any) -> None:
                invoice = await b.engine.get(invoice_id)
                if verb == "finalize":
                    done = await b.engine.finalize(invoice, force=True)
                elif verb == "void":
                    done = await b.engine.void(invoice)
                else:
                    done = await b.collector.paid(invoice, datetime.now(UTC), reference=None, source="cli")
                _emit(done.as_json(admin=True))

            _run(config, profile, data_dir, work)

        command.__doc__ = {"finalize": "Finalize a draft now (before its grace window ends).",
                           "void": "Void a finalized invoice.",
                           "paid": "Record a payment made outside the provider."}[verb]
        return command

    for verb in ("finalize", "void", "paid"):
        billing_app.command(verb)(_change(verb))

    @billing_app.command("credit")
    def credit(tenant: str, amount: str, reason: str = typer.Option("", help="Why (kept in the log)."),
               config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
               data_dir: Path | None = DataDirOpt) -> None:
        """Grant the tenant a credit (USD), consumed by its next invoices, once."""
        try:
            value = Decimal(amount)
        except InvalidOperation:
            fail("AMOUNT is a decimal number of USD, e.g. 12.50", 2)
            raise

        async def work(b: Any) -> None:
            found = await b.engine.add_credit(tenant, value, reason)
            _emit({"id": found.id, "tenant": found.tenant, "amount": str(found.amount)})

        _run(config, profile, data_dir, work)

    @billing_app.command("account")
    def account(tenant: str, plan: str | None = typer.Option(None), timezone: str | None = typer.Option(None),
                email: str | None = typer.Option(None), config: Path | None = ConfigOpt,
                profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt) -> None:
        """Show a tenant's billing account, or change its plan, time zone or e-mail."""
        async def work(b: Any) -> None:
            found = await (b.engine.set_account(tenant, plan=plan, timezone=timezone, email=email)
                           if plan or timezone or email else b.engine.account(tenant))
            _emit({"tenant": found.tenant, "plan": found.plan, "timezone": found.timezone, "email": found.email})

        _run(config, profile, data_dir, work)

    @billing_app.command("reconcile")
    def reconcile(tenant: str | None = typer.Option(None), config: Path | None = ConfigOpt,
                  profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt) -> None:
        """Compare our invoices and payments with the payment provider's; print each difference."""
        async def work(b: Any) -> None:
            found = await b.reconciler.reconcile(tenant)
            for difference in found:
                _emit(difference.as_json())
            if found:
                raise typer.Exit(1)

        _run(config, profile, data_dir, work)

    @billing_app.command("margins")
    def margins_(at: str | None = AtOpt, tenant: str | None = typer.Option(None), config: Path | None = ConfigOpt,
                 profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt) -> None:
        """Revenue, hardware cost and margin per tenant and model for the period holding --at."""
        from inferlab.billing.reconcile import margins

        async def work(b: Any) -> None:
            for row in await margins(b.engine, _at(at), tenant):
                _emit(row)

        _run(config, profile, data_dir, work)

    @billing_app.command("log")
    def log(tenant: str | None = typer.Option(None), limit: int = typer.Option(50, min=1, max=1000),
            config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
            data_dir: Path | None = DataDirOpt) -> None:
        """The billing log (every transition), newest first."""
        async def work(b: Any) -> None:
            for row in await b.engine.store.log_entries(tenant, limit):
                _emit(row)

        _run(config, profile, data_dir, work)
