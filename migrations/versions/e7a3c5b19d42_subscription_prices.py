"""the price each subscription pays, and announced price changes

Revision ID: e7a3c5b19d42
Revises: e7b2c5d8a1f4
Create Date: 2026-11-26 04:40:00

Every live subscription is given the price it pays today (its plan's price), so a later
edit of a plan's price changes nothing for it unless staff announce the change.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7a3c5b19d42'
down_revision = 'e7b2c5d8a1f4'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('subscriptions', sa.Column('price', sa.BigInteger(), nullable=True))
    op.add_column('subscriptions', sa.Column('pending_price', sa.BigInteger(), nullable=True))
    op.add_column('subscriptions', sa.Column('pending_price_from', sa.Date(), nullable=True))
    op.execute(
        "UPDATE subscriptions SET price = (SELECT plans.price FROM plans WHERE plans.id = subscriptions.plan_id) "
        "WHERE status <> 'canceled'"
    )


def downgrade():
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('pending_price_from')
        batch.drop_column('pending_price')
        batch.drop_column('price')
