"""an issued invoice keeps the seller it was issued by

Revision ID: f2a6c8e0b3d5
Revises: e7c2a4f1b9d6
Create Date: 2026-11-26 07:00:00

Invoices already issued get no copy (their seller_id stays NULL) and keep showing the
seller's current details, as they did before.
"""

from alembic import op
import sqlalchemy as sa


revision = "f2a6c8e0b3d5"
down_revision = "e7c2a4f1b9d6"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "seller_snapshots",
        sa.Column("id", Id, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("legal_name", sa.String(200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("tax_id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_snapshots")),
        sa.UniqueConstraint("digest", name=op.f("uq_seller_snapshots_digest")),
    )
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("seller_id", Id, nullable=True))
        batch.create_foreign_key(
            op.f("fk_invoices_seller_id_seller_snapshots"), "seller_snapshots", ["seller_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f("fk_invoices_seller_id_seller_snapshots"), type_="foreignkey")
        batch.drop_column("seller_id")
    op.drop_table("seller_snapshots")
