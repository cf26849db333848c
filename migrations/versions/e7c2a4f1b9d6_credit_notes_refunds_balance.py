"""credit notes, refunds, the customer credit balance

Revision ID: e7c2a4f1b9d6
Revises: e7a3c5b19d42
Create Date: 2026-11-26 04:40:00

Invoices gain what credit notes took off and what the credit balance paid (both 0 for
existing invoices, so what is due is unchanged).
"""

from alembic import op
import sqlalchemy as sa


revision = "e7c2a4f1b9d6"
down_revision = "e7a3c5b19d42"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("invoices", sa.Column("credit_applied_cents", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("invoices", sa.Column("credited_cents", sa.BigInteger(), nullable=False, server_default="0"))

    op.create_table(
        "credit_notes",
        sa.Column("id", Id, nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("invoice_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal_cents", sa.BigInteger(), nullable=False),
        sa.Column("tax_cents", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("created_by_id", Id, nullable=True),
        sa.CheckConstraint(
            "outcome IN ('reduce_due', 'refund', 'credit_balance')", name=op.f("ck_credit_notes_outcome_known")
        ),
        sa.CheckConstraint("total > 0", name=op.f("ck_credit_notes_total_positive")),
        sa.CheckConstraint("total = subtotal_cents + tax_cents", name=op.f("ck_credit_notes_total_is_sum")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_credit_notes_user_id_users")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_credit_notes_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
    )
    op.create_index("ix_credit_notes_invoice", "credit_notes", ["invoice_id"])

    op.create_table(
        "credit_note_lines",
        sa.Column("id", Id, nullable=False),
        sa.Column("credit_note_id", Id, nullable=False),
        sa.Column("invoice_line_id", Id, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("tax_cents", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_percent", sa.Numeric(7, 4), nullable=False),
        sa.Column("tax_name", sa.String(80), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_credit_note_lines_amount_positive")),
        sa.ForeignKeyConstraint(
            ["credit_note_id"], ["credit_notes.id"], name=op.f("fk_credit_note_lines_credit_note_id_credit_notes")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_line_id"], ["invoice_lines.id"], name=op.f("fk_credit_note_lines_invoice_line_id_invoice_lines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_note_lines")),
        sa.UniqueConstraint("credit_note_id", "position", name="uq_credit_note_lines_position"),
    )

    op.create_table(
        "credit_entries",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("invoice_id", Id, nullable=True),
        sa.Column("credit_note_id", Id, nullable=True),
        sa.Column("subscription_id", Id, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "reason IN ('downgrade', 'credit_note', 'applied', 'adjustment')",
            name=op.f("ck_credit_entries_reason_known"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_credit_entries_amount_not_zero")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_credit_entries_user_id_users")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_credit_entries_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["credit_note_id"], ["credit_notes.id"], name=op.f("fk_credit_entries_credit_note_id_credit_notes")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"], name=op.f("fk_credit_entries_subscription_id_subscriptions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
    )
    op.create_index("ix_credit_entries_user", "credit_entries", ["user_id", "currency"])

    op.create_table(
        "refunds",
        sa.Column("id", Id, nullable=False),
        sa.Column("payment_id", Id, nullable=False),
        sa.Column("invoice_id", Id, nullable=False),
        sa.Column("credit_note_id", Id, nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by_id", Id, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_refunds_status_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_refunds_invoice_id_invoices")),
        sa.ForeignKeyConstraint(
            ["credit_note_id"], ["credit_notes.id"], name=op.f("fk_refunds_credit_note_id_credit_notes")
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_refunds_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index("ix_refunds_payment", "refunds", ["payment_id"])
    op.create_index("ix_refunds_invoice", "refunds", ["invoice_id"])
    op.create_index("uq_refunds_provider_ref", "refunds", ["provider_ref"], unique=True)


def downgrade():
    op.drop_table("refunds")
    op.drop_table("credit_entries")
    op.drop_table("credit_note_lines")
    op.drop_table("credit_notes")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("credited_cents")
        batch.drop_column("credit_applied_cents")
