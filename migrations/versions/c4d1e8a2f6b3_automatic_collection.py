"""automatic collection: saved cards, payment attempts, each subscription's collection method

Revision ID: c4d1e8a2f6b3
Revises: c4d8e2f61a09
Create Date: 2026-11-26 03:30:00

"""

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "c4d1e8a2f6b3"
down_revision = "c4d8e2f61a09"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    # A plain ADD COLUMN (no table rebuild on SQLite, no rewrite on PostgreSQL: a constant default).
    op.add_column(
        "subscriptions",
        sa.Column("collection_method", sa.String(length=24), nullable=False, server_default="send_invoice"),
    )
    if op.get_bind().dialect.name == "postgresql":  # SQLite cannot add a CHECK to a table
        op.create_check_constraint(
            op.f("ck_subscriptions_collection_method_known"),
            "subscriptions",
            "collection_method IN ('charge_automatically', 'send_invoice')",
        )

    op.create_table(
        "payment_methods",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=255), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("provider IN ('stripe', 'demo')", name=op.f("ck_payment_methods_provider_known")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_payment_methods_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint("provider_ref", name=op.f("uq_payment_methods_provider_ref")),
    )
    op.create_index("ix_payment_methods_user", "payment_methods", ["user_id"])
    op.create_index(
        "uq_payment_methods_default",
        "payment_methods",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("is_default AND removed_at IS NULL"),
        sqlite_where=sa.text("is_default AND removed_at IS NULL"),
    )

    op.create_table(
        "payment_attempts",
        sa.Column("id", Id, nullable=False),
        sa.Column("invoice_id", Id, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("payment_method_id", Id, nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=255), nullable=True),
        sa.Column("action_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'requires_action')",
            name=op.f("ck_payment_attempts_status_known"),
        ),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_payment_attempts_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["payment_method_id"],
            ["payment_methods.id"],
            name=op.f("fk_payment_attempts_payment_method_id_payment_methods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payment_attempts_idempotency_key")),
        sa.UniqueConstraint("invoice_id", "attempt", name="uq_payment_attempts_invoice_attempt"),
    )
    op.create_index("ix_payment_attempts_next", "payment_attempts", ["next_attempt_at"])
    op.create_index("ix_payment_attempts_created", "payment_attempts", ["created_at"])


def downgrade():
    op.drop_table("payment_attempts")
    op.drop_table("payment_methods")
    op.execute("ALTER TABLE subscriptions DROP COLUMN collection_method")
