"""One store suite, every backend: SQLite (a file per test) and PostgreSQL at 127.0.0.1:5432 (a
throwaway database per session, dropped after; tables emptied between tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from inferlab.store import Database, SqlIdentityStore, upgrade
from inferlab.store.models import (
    ApiKeyRow,
    AuditRow,
    BatchLineRow,
    BatchRow,
    BillingAccountRow,
    BillingCreditNoteRow,
    BillingCreditRow,
    BillingCreditUseRow,
    BillingInvoiceRow,
    BillingLogRow,
    BillingPaymentRow,
    BillingPlanRow,
    BillingWebhookRow,
    FileRow,
    LimitRow,
    ReservationRow,
    ResponseRow,
    TenantRow,
    TierRow,
    UsageDailyRow,
    UsageEventRow,
    UsageHourlyRow,
    UserRow,
)
from inferlab.testing.needs import migrated_postgres_database

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
BILLING_TABLES = (BillingAccountRow, BillingCreditNoteRow, BillingCreditRow, BillingCreditUseRow, BillingInvoiceRow,
                  BillingLogRow, BillingPaymentRow, BillingPlanRow, BillingWebhookRow)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_contract") as name:
        yield f"{PG_SERVER}/{name}"


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def database(backend_url: str) -> AsyncIterator[Database]:
    db = Database(backend_url)
    if db.dialect == "sqlite":
        await upgrade(db)
    else:
        async with db.sessions.begin() as session:
            await session.execute(delete(ApiKeyRow))
            await session.execute(delete(LimitRow))
            await session.execute(delete(AuditRow))
            await session.execute(delete(UserRow))
            await session.execute(delete(ReservationRow))
            for row in (ResponseRow, FileRow, BatchRow, BatchLineRow):
                await session.execute(delete(row))
            await session.execute(delete(TierRow))
            for usage in (UsageEventRow, UsageHourlyRow, UsageDailyRow):
                await session.execute(delete(usage))
            for billing in BILLING_TABLES:
                await session.execute(delete(billing))
            await session.execute(delete(TenantRow).where(TenantRow.id != "default"))
    yield db
    await db.close()


@pytest.fixture
def store(database: Database) -> SqlIdentityStore:
    return SqlIdentityStore(database)
