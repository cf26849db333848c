"""The data: SQLAlchemy 2 typed models. No business logic lives here.

Plain SQLAlchemy (no Flask import), so the billing core can use the models
without pulling in the web framework.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, backref, mapped_column, relationship, scoped_session
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Primary keys are BIGINT on PostgreSQL and the rowid on SQLite.
Id = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zone: store UTC without the offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# What the core and the services take: a plain Session (the core's tests, a script) or
# Flask-SQLAlchemy's scoped proxy of one (`db.session` in a request, a job, a command).
DbSession: TypeAlias = Session | scoped_session[Any]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    if TYPE_CHECKING:
        __table__: ClassVar[Table]  # every model here maps one table (the core writes to them directly)


# Values of the status and kind columns, checked by the database too.
SUB_TRIALING, SUB_ACTIVE, SUB_PAST_DUE, SUB_CANCELED = "trialing", "active", "past_due", "canceled"
SUB_STATUSES = (SUB_TRIALING, SUB_ACTIVE, SUB_PAST_DUE, SUB_CANCELED)
SUB_LIVE = (SUB_TRIALING, SUB_ACTIVE, SUB_PAST_DUE)

INV_OPEN, INV_PAID, INV_OVERDUE, INV_VOID = "open", "paid", "overdue", "void"
INV_STATUSES = (INV_OPEN, INV_PAID, INV_OVERDUE, INV_VOID)
INV_PAYABLE = (INV_OPEN, INV_OVERDUE)
KIND_PERIOD, KIND_PRORATION = "period", "proration"

PAY_SUCCEEDED, PAY_PENDING, PAY_FAILED = "succeeded", "pending", "failed"

NOTE_ISSUED, NOTE_REMINDER, NOTE_OVERDUE, NOTE_RECEIPT, NOTE_ACCOUNT = (
    "invoice_issued",
    "reminder",
    "overdue",
    "receipt",
    "account",
)
# Automatic collection: a charge failed, the bank asks the customer to confirm, a card expires soon.
NOTE_CHARGE_FAILED, NOTE_ACTION_REQUIRED, NOTE_CARD_EXPIRING = "charge_failed", "action_required", "card_expiring"

# How a subscription's invoices are paid: the saved card is charged, or the customer pays each one.
COLLECT_AUTO, COLLECT_SEND = "charge_automatically", "send_invoice"
COLLECTION_METHODS = (COLLECT_AUTO, COLLECT_SEND)

ATT_PENDING, ATT_SUCCEEDED, ATT_FAILED, ATT_ACTION = "pending", "succeeded", "failed", "requires_action"
ATT_STATUSES = (ATT_PENDING, ATT_SUCCEEDED, ATT_FAILED, ATT_ACTION)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lower"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120), default="")
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Signed up, but has not opened the emailed link yet: cannot log in.
    awaiting_confirmation: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Billing details printed on the customer's invoices (billing/customers.py checks them).
    billing_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    billing_company: Mapped[str] = mapped_column(String(200), default="", server_default="")
    billing_address: Mapped[str] = mapped_column(Text, default="", server_default="")
    billing_country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166 alpha-2, upper case
    tax_id: Mapped[str | None] = mapped_column(String(40))  # normalised by python-stdnum (EU VAT: with prefix)

    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="user", foreign_keys="Subscription.user_id")

    # The four members Flask-Login asks for (UserMixin's, without importing Flask here).
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def __str__(self) -> str:
        return self.email


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("trial_days >= 0", name="trial_not_negative"),
        CheckConstraint("interval IN ('month', 'year')", name="interval_known"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    interval: Mapped[str] = mapped_column(String(8), default="month")
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the plan entitles to: {"seats": 10, "priority_support": true} (billing.entitlements checks it).
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))

    def __str__(self) -> str:
        return f"{self.name} (yearly)" if self.interval == "year" else self.name


class Subscription(Base):
    """A customer's subscription to a plan.

    Period k runs from anchor + k*interval_months to anchor + (k+1)*interval_months.
    `next_period` / `next_period_start` name the first period not yet billed; the
    billing run selects on `next_period_start` and advances both.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(_in("status", SUB_STATUSES), name="status_known"),
        CheckConstraint("interval_months IN (1, 12)", name="interval_known"),
        CheckConstraint(_in("collection_method", COLLECTION_METHODS), name="collection_method_known"),
        # At most one live subscription per user.
        Index(
            "uq_subscriptions_live_user",
            "user_id",
            unique=True,
            postgresql_where=text("status <> 'canceled'"),
            sqlite_where=text("status <> 'canceled'"),
        ),
        # Deliberately no index on next_period_start: the billing run rewrites it on
        # every row each period, and with no index to maintain (and room left on
        # each page, see the migration's fillfactor) PostgreSQL updates in place
        # (HOT). The run walks id ranges instead, so it never needs that index.
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # No plain indexes on user_id / plan_id: every index is rewritten for each
    # subscription the billing run advances; uq_subscriptions_live_user serves lookups.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    pending_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(16))
    interval_months: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[dt.date] = mapped_column(Date)
    next_period: Mapped[int] = mapped_column(Integer, default=0)
    next_period_start: Mapped[dt.date] = mapped_column(Date)
    current_period_start: Mapped[dt.date] = mapped_column(Date)
    current_period_end: Mapped[dt.date] = mapped_column(Date)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Collection paused since then: the billing run issues no invoices until it is resumed.
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    collection_method: Mapped[str] = mapped_column(String(24), default=COLLECT_SEND, server_default=COLLECT_SEND)
    # The price this subscription pays per period (minor units), fixed when it starts or changes
    # plan: editing the plan's price never changes it silently. None: the plan's price.
    price: Mapped[int | None] = mapped_column(BigInteger)
    # A price change announced to the subscriber: `pending_price` applies to periods starting
    # on or after `pending_price_from` (the notice's date plus the notice period).
    pending_price: Mapped[int | None] = mapped_column(BigInteger)
    pending_price_from: Mapped[dt.date | None] = mapped_column(Date)

    user: Mapped[User] = relationship(back_populates="subscriptions", foreign_keys=[user_id])
    plan: Mapped[Plan] = relationship(foreign_keys=[plan_id])
    pending_plan: Mapped[Plan | None] = relationship(foreign_keys=[pending_plan_id])

    @property
    def is_live(self) -> bool:
        return self.status in SUB_LIVE

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None and self.status in SUB_LIVE

    def __str__(self) -> str:
        return f"#{self.id} {self.plan.code if self.plan else ''} ({self.status})"


def _untaxed_subtotal(context: Any) -> int:
    """An invoice made without a subtotal: its total less its tax (none given: no tax)."""
    given = context.get_current_parameters()
    return int(given.get("total") or 0) - int(given.get("tax_cents") or 0)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(_in("status", INV_STATUSES), name="status_known"),
        CheckConstraint(_in("kind", (KIND_PERIOD, KIND_PRORATION)), name="kind_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        # The database, not Python, guarantees one invoice per billing period.
        Index(
            "uq_invoices_period",
            "subscription_id",
            "period_start",
            unique=True,
            postgresql_where=text("kind = 'period'"),
            sqlite_where=text("kind = 'period'"),
        ),
        Index("ix_invoices_user", "user_id", "id"),
        Index("ix_invoices_status_due", "status", "due_date"),
        # The invoices still waiting for their number (billing/numbering.py): few at any time.
        Index(
            "ix_invoices_unnumbered",
            "id",
            postgresql_where=text("number IS NULL"),
            sqlite_where=text("number IS NULL"),
        ),
        Index("uq_invoices_number", "number", unique=True),
        CheckConstraint("total = subtotal_cents + tax_cents", name="total_is_sum"),
        {"sqlite_autoincrement": True},  # ids never reused
    )

    # The id is the invoice's address (URLs); `number` is what people see.
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    kind: Mapped[str] = mapped_column(String(16), default=KIND_PERIOD)
    # What the invoice is for, as it read when issued ("Pro plan"). Its charges are
    # its InvoiceLine rows (a period invoice has one, a proration one or more).
    description: Mapped[str] = mapped_column(String(255), default="")
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    total: Mapped[int] = mapped_column(BigInteger)  # minor units: what the customer pays, tax included
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=INV_OPEN)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[dt.date] = mapped_column(Date)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The latest checkout started for it, reused while still open (no double sessions).
    checkout_ref: Mapped[str | None] = mapped_column(String(255))
    # The gapless number ("INV-000042"), given once the invoice is final (billing/numbering.py).
    number: Mapped[str | None] = mapped_column(String(40))  # unique: uq_invoices_number
    # The sum of the lines' net amounts and of their tax: total = subtotal + tax (billing/taxes.py).
    subtotal_cents: Mapped[int] = mapped_column(BigInteger, default=_untaxed_subtotal, server_default="0")
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_note: Mapped[str] = mapped_column(Text, default="", server_default="")  # e.g. reverse charge
    # Who it was billed to, copied from the customer's billing details when it is numbered
    # (billing/numbering.py): an issued invoice never changes when the customer's details do.
    # NULL buyer_email: issued before the copy existed; its document reads the customer.
    buyer_email: Mapped[str | None] = mapped_column(String(254))
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    buyer_company: Mapped[str | None] = mapped_column(String(200))
    buyer_address: Mapped[str | None] = mapped_column(Text)
    buyer_country: Mapped[str | None] = mapped_column(String(2))
    buyer_tax_id: Mapped[str | None] = mapped_column(String(40))
    # What the customer's credit balance paid of it (billing/credits.py), and what credit notes
    # took off while it was unpaid: amount due = total - credited - credit applied - paid.
    credit_applied_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credited_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Who issued it, as the seller's details read when it was numbered (billing/seller.py).
    # NULL: issued before the copy existed; its document reads the current configuration.
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("seller_snapshots.id"))

    user: Mapped[User] = relationship()
    subscription: Mapped[Subscription | None] = relationship()
    seller: Mapped[SellerSnapshot | None] = relationship()
    plan: Mapped[Plan | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(back_populates="invoice", order_by="InvoiceLine.position")
    payments: Mapped[list[Payment]] = relationship(back_populates="invoice", order_by="Payment.id")
    payment_attempts: Mapped[list[PaymentAttempt]] = relationship(
        back_populates="invoice", order_by="PaymentAttempt.attempt"
    )
    credit_notes: Mapped[list[CreditNote]] = relationship(back_populates="invoice", order_by="CreditNote.id")
    refunds: Mapped[list[Refund]] = relationship(back_populates="invoice", order_by="Refund.id")
    notices: Mapped[list[Notification]] = relationship(viewonly=True, order_by="Notification.id")

    @property
    def display_lines(self) -> list[InvoiceLine]:
        return list(self.lines)

    @property
    def paid_cents(self) -> int:
        """What succeeded payments brought in for it (refunds not deducted)."""
        return sum(p.amount for p in self.payments if p.status == PAY_SUCCEEDED)

    @property
    def amount_due(self) -> int:
        """What the customer still owes: the total less credit notes, credit applied and payments."""
        return max(self.total - self.credited_cents - self.credit_applied_cents - self.paid_cents, 0)

    def __str__(self) -> str:
        return self.number or f"draft #{self.id}"


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position", name="uq_invoice_lines_position"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    position: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # net: quantity x unit_amount, tax not included
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    # The line's tax (billing/taxes.py), its rate and name as they were when issued.
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_rate_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal(0), server_default="0")
    tax_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    # A discount line (negative amount) names the coupon it applies (billing/coupons.py).
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id"))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("provider IN ('stripe', 'demo', 'manual')", name="provider_known"),
        CheckConstraint(_in("status", (PAY_SUCCEEDED, PAY_PENDING, PAY_FAILED)), name="status_known"),
        Index("ix_payments_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    flag: Mapped[str | None] = mapped_column(String(255))  # why staff must look
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
    recorded_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_ref}"


class WebhookEvent(Base):
    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(120))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    def __str__(self) -> str:
        return f"{self.type} {self.provider_event_id}"


class Notification(Base):
    """The outbox: every notice for a customer, rendered once and delivered once."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("invoice_id", "kind", "step", name="uq_notifications_step"),
        Index("ix_notifications_user", "user_id", "id"),
        Index(
            "ix_notifications_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer, default=0)  # days relative to the due date
    subject: Mapped[str | None] = mapped_column(String(255))  # rendered on delivery
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # A failed send waits before its next try (notify.outbox.retry_delay), and stops
    # after notify.outbox.MAX_ATTEMPTS: one bad address never blocks the outbox.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

    def __str__(self) -> str:
        return f"{self.kind} #{self.id}"


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown so people can tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class AuditEntry(Base):
    """Who did what to which object, and when: every staff action."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} #{self.object_id or ''}".rstrip(" #")


class LoginSession(Base):
    """One logged-in browser: the Flask session carries a random id, only its SHA-256 is here.

    Log-out deletes the row, a password change deletes the user's other rows: a
    cookie captured earlier then opens nothing.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginThrottle(Base):
    """Failed log-in attempts counted per key: an email address (known or not) or a client address.

    Counted with one atomic upsert per attempt (never read, add, write), so
    concurrent attempts cannot slip past the limit.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


SCOPE_READ, SCOPE_WRITE = "read", "write"


class ServerKey(Base):
    """A key for the company's own programs: any customer's data, within its scope.

    Created and revoked by staff; like ApiToken only the SHA-256 of the secret is stored.
    """

    __tablename__ = "server_keys"
    __table_args__ = (CheckConstraint(_in("scope", (SCOPE_READ, SCOPE_WRITE)), name="scope_known"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8), default=SCOPE_READ)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyKey(Base):
    """The first answer to a POST sent with an Idempotency-Key, replayed for repeats.

    One row per (principal, key): the unique constraint makes concurrent duplicates wait
    for the first and then find its answer, so the request acts once.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    principal: Mapped[str] = mapped_column(String(40))  # "user:12" or "server_key:3"
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class PaymentMethod(Base):
    """A card saved with the provider for off-session charges; only what the customer is shown
    is kept here (brand, last four, expiry), never the number."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint("provider IN ('stripe', 'demo')", name="provider_known"),
        Index("ix_payment_methods_user", "user_id"),
        # At most one default card per customer.
        Index(
            "uq_payment_methods_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default AND removed_at IS NULL"),
            sqlite_where=text("is_default AND removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(255), unique=True)
    brand: Mapped[str] = mapped_column(String(32), default="card")
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    @property
    def label(self) -> str:
        return f"{self.brand.title()} \u2022\u2022\u2022\u2022 {self.last4}"

    def __str__(self) -> str:
        return self.label


class PaymentAttempt(Base):
    """One off-session charge of an invoice, recorded (and committed) before the provider is
    called: its idempotency key makes a repeat of the call, after a crash or a retried job,
    the same charge."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint(_in("status", ATT_STATUSES), name="status_known"),
        UniqueConstraint("invoice_id", "attempt", name="uq_payment_attempts_invoice_attempt"),
        Index("ix_payment_attempts_next", "next_attempt_at"),
        Index("ix_payment_attempts_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    attempt: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per invoice
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=ATT_PENDING)
    provider_ref: Mapped[str | None] = mapped_column(String(255))  # the payment intent
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(255))  # in plain words
    action_url: Mapped[str | None] = mapped_column(String(2000))  # where the customer confirms
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship(back_populates="payment_attempts")
    payment_method: Mapped[PaymentMethod | None] = relationship()

    def __str__(self) -> str:
        return f"attempt {self.attempt} of invoice #{self.invoice_id} ({self.status})"


# Every engine (the app's, a worker's, the core's tests'): the database keeps the invariants.
@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: enforce foreign keys, and let the web app and workers share the file."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.close()


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(connection, _name):
    """SQLite: begin the transaction before its first SAVEPOINT.

    The sqlite3 driver opens a transaction only before a write; a SAVEPOINT opened
    outside one starts a transaction of its own that its RELEASE commits, so an error
    later in the same unit of work could no longer undo it.
    """
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, sqlite3.Connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN")


# Outbound webhooks: what the company's own application is told, signed the Standard
# Webhooks way. An event is recorded in the transaction of the change it reports (the
# outbox); a dispatch fans it out into one delivery per subscribed endpoint.
DLV_PENDING, DLV_SUCCEEDED, DLV_FAILED = "pending", "succeeded", "failed"
DLV_STATUSES = (DLV_PENDING, DLV_SUCCEEDED, DLV_FAILED)
NOTE_STAFF_ALERT = "staff_alert"  # a ready-written notice to a staff member (an endpoint disabled)


class WebhookEndpoint(Base):
    """A URL of the company's application that receives events, with its signing secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # "whsec_" + base64 of 24 random bytes; kept (not hashed): every delivery is signed with it.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Since when every attempt has failed (None while the last attempt succeeded).
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Deliveries go out in order: after a failure, nothing is sent before this moment.
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriptions: Mapped[list[WebhookEndpointEvent]] = relationship(
        back_populates="endpoint", cascade="all, delete-orphan", order_by="WebhookEndpointEvent.event_type"
    )

    @property
    def event_types(self) -> list[str]:
        return [s.event_type for s in self.subscriptions]

    def __str__(self) -> str:
        return self.url


class WebhookEndpointEvent(Base):
    """An event type an endpoint receives (a row each, so the fan-out is one join)."""

    __tablename__ = "webhook_endpoint_events"

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64), primary_key=True)

    endpoint: Mapped[WebhookEndpoint] = relationship(back_populates="subscriptions")


class OutboundEvent(Base):
    """Something that happened, recorded with the change itself; sent by the workers later."""

    __tablename__ = "outbound_events"
    __table_args__ = (
        Index(
            "ix_outbound_events_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        Index("ix_outbound_events_type", "type", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)  # JSON object: the event's subject as it was
    # Events that happen once per object ("invoice.issued:42") carry a key: recording one twice is a no-op.
    key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # fanned out into deliveries

    @property
    def msg_id(self) -> str:
        """The webhook-id header: the same for every attempt, so receivers can de-duplicate."""
        return f"evt_{self.id}"

    def __str__(self) -> str:
        return f"{self.type} {self.msg_id}"


class WebhookDelivery(Base):
    """One event to one endpoint: its state, its attempts and when it is tried next."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        CheckConstraint(_in("status", DLV_STATUSES), name="status_known"),
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "event_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_event", "event_id"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbound_events.id"))
    status: Mapped[str] = mapped_column(String(16), default=DLV_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    endpoint: Mapped[WebhookEndpoint] = relationship()
    event: Mapped[OutboundEvent] = relationship()
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(order_by="WebhookAttempt.id", viewonly=True)

    def __str__(self) -> str:
        return f"delivery #{self.id}"


class WebhookAttempt(Base):
    """The log of one try: when, the answer's status code and the start of its body, or the error."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(String(1000), default="")
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class TaxRate(Base):
    """A tax rate staff manage: it applies to customers whose billing country is `country`."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        CheckConstraint("percent >= 0 AND percent <= 100", name="percent_range"),
        CheckConstraint("length(country) = 2", name="country_code"),
        # One active rate per country: the billing run must never have to choose.
        Index(
            "uq_tax_rates_active_country",
            "country",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))  # "VAT", "MwSt."
    percent: Mapped[Decimal] = mapped_column(Numeric(7, 4))  # 25.5 means 25.5 %
    country: Mapped[str] = mapped_column(String(2))
    inclusive: Mapped[bool] = mapped_column(Boolean, default=False)  # prices already include it
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __str__(self) -> str:
        return f"{self.name} {self.percent.normalize():f} % ({self.country})"


class SellerSnapshot(Base):
    """The seller's details (SELLER_* settings) as invoices were issued under them: one row per
    distinct set, found by its digest; each numbered invoice points at the one it was issued under."""

    __tablename__ = "seller_snapshots"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the fields below
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")  # one line each
    country: Mapped[str] = mapped_column(String(2), default="")
    tax_id: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InvoiceNumberCounter(Base):
    """The last invoice number given per prefix (and year, 0 when numbers run on across years).

    Locked (SELECT ... FOR UPDATE) and bumped in the transaction that numbers invoices:
    a rolled-back transaction gives its numbers back, so the sequence has no gaps.
    """

    __tablename__ = "invoice_number_counters"
    __table_args__ = (PrimaryKeyConstraint("prefix", "year"),)

    prefix: Mapped[str] = mapped_column(String(20))
    year: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)


# A plan's new price announced to its existing subscribers (billing/pricing.py): ready-written.
NOTE_PRICE_CHANGE = "price_change"


DUR_ONCE, DUR_REPEATING, DUR_FOREVER = "once", "repeating", "forever"
COUPON_DURATIONS = (DUR_ONCE, DUR_REPEATING, DUR_FOREVER)

coupon_plans = Table(
    "coupon_plans",
    Base.metadata,
    Column("coupon_id", ForeignKey("coupons.id", ondelete="CASCADE"), primary_key=True),
    Column("plan_id", ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True),
)


class Coupon(Base):
    """A discount staff define: percent or fixed amount, for once, N periods or forever.

    `times_redeemed` is bumped by a conditional UPDATE (billing/coupons.py) and the check
    below is the database's last word: a coupon is never redeemed past its maximum.
    """

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(_in("duration", COUPON_DURATIONS), name="duration_known"),
        CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name="percent_or_amount"),
        CheckConstraint("percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)", name="percent_range"),
        CheckConstraint("amount_off IS NULL OR (amount_off > 0 AND currency IS NOT NULL)", name="amount_positive"),
        CheckConstraint(
            "(duration = 'repeating') = (duration_periods IS NOT NULL) AND "
            "(duration_periods IS NULL OR duration_periods > 0)",
            name="periods_if_repeating",
        ),
        CheckConstraint("max_redemptions IS NULL OR times_redeemed <= max_redemptions", name="within_max"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))  # shown on the invoice line: "Discount: <name>"
    percent_off: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))  # 12.5 means 12.5 %
    amount_off: Mapped[int | None] = mapped_column(BigInteger)  # minor units of `currency`
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(16), default=DUR_ONCE)
    duration_periods: Mapped[int | None] = mapped_column(Integer)  # for 'repeating'
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # no redemption from then on
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: paused, no new redemptions
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    plans: Mapped[list[Plan]] = relationship(secondary=coupon_plans)  # none: every plan
    promotion_codes: Mapped[list[PromotionCode]] = relationship(back_populates="coupon")

    def __str__(self) -> str:
        return self.name


class PromotionCode(Base):
    """A code customers type (case-insensitive: stored upper-case) that redeems a coupon."""

    __tablename__ = "promotion_codes"
    __table_args__ = (
        CheckConstraint("code = upper(code)", name="code_upper"),
        CheckConstraint("max_redemptions IS NULL OR times_redeemed <= max_redemptions", name="within_max"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    coupon: Mapped[Coupon] = relationship(back_populates="promotion_codes")

    def __str__(self) -> str:
        return self.code


class CouponRedemption(Base):
    """A coupon applied to a subscription: it discounts the invoices of periods
    first_period .. end_period - 1 (end_period NULL: forever). One per customer and coupon."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("coupon_id", "user_id", name="uq_coupon_redemptions_coupon_user"),
        Index("ix_coupon_redemptions_subscription", "subscription_id", "first_period"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    promotion_code_id: Mapped[int | None] = mapped_column(ForeignKey("promotion_codes.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    first_period: Mapped[int] = mapped_column(Integer)
    end_period: Mapped[int | None] = mapped_column(Integer)
    redeemed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    coupon: Mapped[Coupon] = relationship()
    promotion_code: Mapped[PromotionCode | None] = relationship()
    user: Mapped[User] = relationship()
    subscription: Mapped[Subscription] = relationship()

    def __str__(self) -> str:
        return f"{self.coupon} for {self.user}"


# Credit notes, the customer's credit balance, refunds (billing/credits.py).
CN_DUE, CN_REFUND, CN_BALANCE = "reduce_due", "refund", "credit_balance"
CN_OUTCOMES = (CN_DUE, CN_REFUND, CN_BALANCE)
CREDIT_DOWNGRADE, CREDIT_NOTE, CREDIT_APPLIED, CREDIT_ADJUSTMENT = "downgrade", "credit_note", "applied", "adjustment"
CREDIT_REASONS = (CREDIT_DOWNGRADE, CREDIT_NOTE, CREDIT_APPLIED, CREDIT_ADJUSTMENT)
REF_PENDING, REF_SUCCEEDED, REF_FAILED = "pending", "succeeded", "failed"
REF_STATUSES = (REF_PENDING, REF_SUCCEEDED, REF_FAILED)


class CreditNote(Base):
    """A correction of an issued invoice (never edited itself): some of its lines' amounts taken back.

    Numbered from its own gapless counter (prefix CN). `outcome` says where the money goes:
    off what is still due, back through the provider (a Refund), or to the credit balance.
    """

    __tablename__ = "credit_notes"
    __table_args__ = (
        CheckConstraint(_in("outcome", CN_OUTCOMES), name="outcome_known"),
        CheckConstraint("total > 0", name="total_positive"),
        CheckConstraint("total = subtotal_cents + tax_cents", name="total_is_sum"),
        Index("ix_credit_notes_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_cents: Mapped[int] = mapped_column(BigInteger)
    tax_cents: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    invoice: Mapped[Invoice] = relationship(back_populates="credit_notes")
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    lines: Mapped[list[CreditNoteLine]] = relationship(back_populates="credit_note", order_by="CreditNoteLine.position")

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(Base):
    __tablename__ = "credit_note_lines"
    __table_args__ = (
        UniqueConstraint("credit_note_id", "position", name="uq_credit_note_lines_position"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    credit_note_id: Mapped[int] = mapped_column(ForeignKey("credit_notes.id"))
    invoice_line_id: Mapped[int] = mapped_column(ForeignKey("invoice_lines.id"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)  # net credited, tax not included
    tax_cents: Mapped[int] = mapped_column(BigInteger)
    tax_rate_percent: Mapped[Decimal] = mapped_column(Numeric(7, 4), default=Decimal(0))
    tax_name: Mapped[str] = mapped_column(String(80), default="")

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")
    invoice_line: Mapped[InvoiceLine] = relationship()


class CreditEntry(Base):
    """One movement of a customer's credit balance (the ledger): positive adds credit, negative uses it.

    The balance is the sum of a customer's entries in a currency.
    """

    __tablename__ = "credit_entries"
    __table_args__ = (
        CheckConstraint(_in("reason", CREDIT_REASONS), name="reason_known"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_credit_entries_user", "user_id", "currency"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(255), default="")
    # The source: the invoice it was applied to, the credit note or the subscription it came from.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("credit_notes.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice | None] = relationship()
    credit_note: Mapped[CreditNote | None] = relationship()


class Refund(Base):
    """Money given back on a payment, through its provider.

    Recorded (pending) before the provider is called, its id the provider's idempotency key;
    the payment row is locked while the refundable rest is computed, so concurrent clicks
    never refund more than was paid.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint(_in("status", REF_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_payment", "payment_id"),
        Index("ix_refunds_invoice", "invoice_id"),
        Index("uq_refunds_provider_ref", "provider_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("credit_notes.id"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=REF_PENDING)
    reason: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    payment: Mapped[Payment] = relationship(backref=backref("refunds", order_by="Refund.id"))
    invoice: Mapped[Invoice] = relationship(back_populates="refunds")
    credit_note: Mapped[CreditNote | None] = relationship()

    def __str__(self) -> str:
        return f"refund {self.provider_ref or self.id}"
