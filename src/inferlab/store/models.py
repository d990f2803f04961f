"""SQLAlchemy 2 table models. The schema itself is owned by the Alembic migrations next door;
``tests/contract/store`` checks that the two never drift (autogenerate with ``compare_type``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from inferlab.auth.model import Role

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out (SQLite forgets the zone; PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        found: datetime = value
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True)  # NULL: tenants.default_tier
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    overrides: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class TierRow(Base):
    """A tier added or replaced through the admin API (shipped and configured tiers are not stored)."""

    __tablename__ = "tiers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_users_tenant_id_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(String(32))  # a plain string column; the API only ever writes a Role
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public key id inside il-<id>-<secret>
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(256))
    key_hash: Mapped[str] = mapped_column(String(128))
    route_groups: Mapped[list[str]] = mapped_column(JSON)
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # NULL: every model
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LimitRow(Base):
    """Stored limits and quotas of one key, user or tenant (NULL: the configured default applies)."""

    __tablename__ = "limits"

    subject: Mapped[str] = mapped_column(String(16), primary_key=True)  # key | user | tenant
    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    daily_spend_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    monthly_spend_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditRow(Base):
    """One admin action (``inferlab.auth.audit``): never a secret, only allowlisted fields."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # time-ordered
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_role: Mapped[str] = mapped_column(String(32))
    actor_source: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))  # the target's: who may read the row
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


class ReservationRow(Base):
    """A time-boxed guarantee (``inferlab.resources.reservations``): [start, end), UTC."""

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_pool_end", "pool", "end_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    pool: Mapped[str] = mapped_column(String(256))
    sequences: Mapped[int] = mapped_column(Integer)
    kv_tokens: Mapped[int] = mapped_column(BigInteger)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime())
    end_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Fixed(TypeDecorator[Decimal]):
    """An exact decimal with ``scale`` places: NUMERIC(precision, scale) on PostgreSQL; on SQLite
    (whose NUMERIC is a float) a 64-bit integer count of 10^-scale units, so sums stay exact there
    too. Decimal in, Decimal out; more places than ``scale`` are refused, never rounded away."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale)
        self.precision = precision
        self.scale = scale
        self._unit = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | int | None:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._unit)
        if exact != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(exact.scaleb(self.scale)) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)


def Money() -> Fixed:
    """USD with 10 places: NUMERIC(20, 10) (below 10^10 USD a row)."""
    return Fixed(20, 10)


def Millis() -> Fixed:
    """Milliseconds with microsecond places (a sum of them in the rollups)."""
    return Fixed(18, 3)


class UsageEventRow(Base):
    """One usage event (``inferlab.metering.UsageEvent``), the ledger's line.

    PostgreSQL: partitioned by month on ``time`` (children ``usage_events_pYYYYMM``, created on
    demand by the store), so the primary key must include ``time``: the idempotency key is
    (id, time). That is as strong as the id alone, because an event's time is fixed when it is
    made and travels with it (outbox, re-shipments). SQLite: one plain table with the same key.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_tenant_time", "tenant", "time"),
        Index("ix_usage_events_replica_time", "replica", "time"),  # 0007: the hardware cost job's reads
        Index("ix_usage_events_time", "time"),  # 0012: the anomaly detector's windows
        {"postgresql_partition_by": "RANGE (time)"},
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tenant: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tier: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    replica: Mapped[str | None] = mapped_column(String(256), nullable=True)
    hardware: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)
    token_source: Mapped[str] = mapped_column(String(16))
    queue_ms: Mapped[Decimal | None] = mapped_column(Millis(), nullable=True)
    ttft_ms: Mapped[Decimal | None] = mapped_column(Millis(), nullable=True)
    duration_ms: Mapped[Decimal] = mapped_column(Millis())
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Money())
    hardware_cost: Mapped[Decimal] = mapped_column(Money())


class UsageRollup:
    """Sums of the usage events of one bucket (an hour, a day) and one (tenant, tier, model, key,
    replica, status). Maintained in the transaction that inserts the events, from the new ones
    only. An absent key or replica is ``''`` (a primary key column is never NULL)."""

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    tier: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    replica: Mapped[str] = mapped_column(String(256), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Money())
    hardware_cost: Mapped[Decimal] = mapped_column(Money())
    duration_ms: Mapped[Decimal] = mapped_column(Millis())


class UsageHourlyRow(UsageRollup, Base):
    __tablename__ = "usage_hourly"
    __table_args__ = (Index("ix_usage_hourly_bucket", "bucket"),)


class UsageDailyRow(UsageRollup, Base):
    __tablename__ = "usage_daily"
    __table_args__ = (Index("ix_usage_daily_bucket", "bucket"),)


class UsageCostIntervalRow(Base):
    """A replica's interval whose hardware cost was attributed (``inferlab.metering.costing``):
    written in the transaction that adds the parts, so an interval is costed once."""

    __tablename__ = "usage_cost_intervals"
    __table_args__ = (Index("ix_usage_cost_intervals_start", "start"),)

    replica: Mapped[str] = mapped_column(String(256), primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    busy_us: Mapped[int] = mapped_column(BigInteger)
    quanta: Mapped[int] = mapped_column(BigInteger)  # 10⁻⁹ USD
    requests: Mapped[int] = mapped_column(Integer)
    costed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BudgetAlertRow(Base):
    """A budget alert claimed (``pending``) or delivered (``sent``), once per key
    (tenant:month:quota:threshold; ``inferlab.metering.alerts``)."""

    __tablename__ = "budget_alerts"

    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ResponseRow(Base):
    """One stored Responses API response (``inferlab.responses``), readable by its tenant until
    ``expires_at``."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    response: Mapped[dict[str, Any]] = mapped_column(JSON())
    input_items: Mapped[list[Any]] = mapped_column(JSON())
    history: Mapped[list[Any]] = mapped_column(JSON())


class FileRow(Base):
    """A Batch API file's record (``inferlab.batches``); its bytes are in the data directory."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BatchRow(Base):
    """A batch (``inferlab.batches``): its state, counts, and which runner holds it until when."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant_id_created_at", "tenant_id", "created_at"),
                      Index("ix_batches_status", "status"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    total: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    caller: Mapped[dict[str, Any]] = mapped_column(JSON())
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON(none_as_null=True), nullable=True)
    errors: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    output_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    in_progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finalizing_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelling_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the runner holding it
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class BatchLineRow(Base):
    """One answered line of a batch, written before the runner moves on: never answered twice."""

    __tablename__ = "batch_lines"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    custom_id: Mapped[str] = mapped_column(String(512))
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any]] = mapped_column(JSON())
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())

class BillingAccountRow(Base):
    """A tenant's billing settings (``inferlab.billing``): its plan, time zone, provider customer."""

    __tablename__ = "billing_accounts"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(256), nullable=True)
    provider_customer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BillingPlanRow(Base):
    """A plan version added through the admin API (configured versions are not stored)."""

    __tablename__ = "billing_plans"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    effective: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BillingInvoiceRow(Base):
    """An invoice: its lines as JSON (frozen once finalized), its money exact."""

    __tablename__ = "billing_invoices"
    __table_args__ = (UniqueConstraint("tenant", "period_start", name="uq_billing_invoices_tenant_period"),
                      Index("ix_billing_invoices_state_next", "state", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UtcDateTime())
    period_end: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    plan: Mapped[str] = mapped_column(String(64))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    subtotal: Mapped[Decimal] = mapped_column(Money())
    credits_applied: Mapped[Decimal] = mapped_column(Money())
    amount_paid: Mapped[Decimal] = mapped_column(Money())
    amount_refunded: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finalized_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    dunning: Mapped[str] = mapped_column(String(16))


class BillingCreditRow(Base):
    """A credit grant; ``remaining`` falls as invoices consume it."""

    __tablename__ = "billing_credits"
    __table_args__ = (Index("ix_billing_credits_tenant", "tenant"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    remaining: Mapped[Decimal] = mapped_column(Money())
    reason: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BillingCreditUseRow(Base):
    """A credit consumed by an invoice: the key makes the consumption happen once."""

    __tablename__ = "billing_credit_uses"

    invoice_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    credit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money())


class BillingCreditNoteRow(Base):
    """A refund or credit note against a paid invoice (their sum never exceeds what was paid)."""

    __tablename__ = "billing_credit_notes"
    __table_args__ = (Index("ix_billing_credit_notes_invoice_id", "invoice_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(96))
    tenant: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # refund | credit
    amount: Mapped[Decimal] = mapped_column(Money())
    reason: Mapped[str] = mapped_column(String(256))
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BillingPaymentRow(Base):
    """One payment attempt, keyed by its idempotency key (invoice and attempt number)."""

    __tablename__ = "billing_payments"
    __table_args__ = (Index("ix_billing_payments_invoice_id", "invoice_id"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(96))
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    amount: Mapped[Decimal] = mapped_column(Money())
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BillingWebhookRow(Base):
    """A provider's webhook event, stored before it is answered; processed once."""

    __tablename__ = "billing_webhook_events"
    __table_args__ = (Index("ix_billing_webhook_events_processed_at", "processed_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)


class BillingLogRow(Base):
    """Every billing transition (invoice states, payments, dunning, suspension), in order."""

    __tablename__ = "billing_log"
    __table_args__ = (Index("ix_billing_log_tenant_id", "tenant", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # time-ordered
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    tenant: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[str | None] = mapped_column(String(96), nullable=True)
    action: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class RegistryCounterRow(Base):
    """The model registry's change counter: bumped by every change, polled by every gateway."""

    __tablename__ = "registry_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ModelVersionRow(Base):
    """An immutable model version (``inferlab.registry``): what serves it, its artefact, its defaults."""

    __tablename__ = "model_versions"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ModelAliasRow(Base):
    """A movable alias (``model@stable``) onto one version of the model."""

    __tablename__ = "model_aliases"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ExperimentRow(Base):
    """An A/B test or canary of a model: control and candidate versions, the candidate's weight,
    the assignment unit and salt, its state, and the decision with its evidence once judged."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    control: Mapped[str] = mapped_column(String(64))
    candidate: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class ExperimentStatsRow(Base):
    """One gateway's cumulative figures for one variant of one experiment (summed when judged)."""

    __tablename__ = "experiment_stats"

    experiment: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant: Mapped[str] = mapped_column(String(16), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AnomalyIncidentRow(Base):
    """An anomaly incident (``inferlab.anomaly``): at most one open per key (kind:subject), which
    gateways sharing the store claim by inserting it — the one that inserts sends the alert."""

    __tablename__ = "anomaly_incidents"
    __table_args__ = (
        Index("ix_anomaly_incidents_open_key", "key", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        Index("ix_anomaly_incidents_opened_at", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(600))
    kind: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(256))
    model: Mapped[str] = mapped_column(String(256))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    detections: Mapped[int] = mapped_column(Integer)
    peak: Mapped[dict[str, Any]] = mapped_column(JSON)
    latest: Mapped[dict[str, Any]] = mapped_column(JSON)


class IdempotencyRow(Base):
    """An ``Idempotency-Key`` a caller sent (``inferlab.idempotency``): claimed while its first
    request runs (``status`` NULL), then that request's response, until ``expires_at``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    locked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
