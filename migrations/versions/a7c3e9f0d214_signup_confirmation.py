"""sign-up confirmation: a new account waits for the emailed link

Revision ID: a7c3e9f0d214
Revises: 8e4d6c2a1b55
Create Date: 2026-11-25 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c3e9f0d214'
down_revision = '8e4d6c2a1b55'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('awaiting_confirmation', sa.Boolean(), nullable=False,
                                     server_default=sa.text('false')))


def downgrade():
    op.execute("ALTER TABLE users DROP COLUMN awaiting_confirmation")
