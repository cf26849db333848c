"""an issued invoice keeps the buyer it was billed to

Revision ID: e7b2c5d8a1f4
Revises: e7c2a5d9b1f4
Create Date: 2026-11-26 04:50:00

Invoices already issued get no copy (their buyer_email stays NULL) and keep showing the
customer's current details, as they did before.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7b2c5d8a1f4'
down_revision = 'e7c2a5d9b1f4'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('invoices', sa.Column('buyer_email', sa.String(254), nullable=True))
    op.add_column('invoices', sa.Column('buyer_name', sa.String(200), nullable=True))
    op.add_column('invoices', sa.Column('buyer_company', sa.String(200), nullable=True))
    op.add_column('invoices', sa.Column('buyer_address', sa.Text(), nullable=True))
    op.add_column('invoices', sa.Column('buyer_country', sa.String(2), nullable=True))
    op.add_column('invoices', sa.Column('buyer_tax_id', sa.String(40), nullable=True))


def downgrade():
    with op.batch_alter_table('invoices') as batch:
        for name in ('buyer_tax_id', 'buyer_country', 'buyer_address', 'buyer_company', 'buyer_name', 'buyer_email'):
            batch.drop_column(name)
