"""server keys, plan features, paused collection, idempotency keys

Revision ID: c4d8e2f1a9b3
Revises: a7c3e9f0d214
Create Date: 2026-11-26 03:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d8e2f1a9b3'
down_revision = 'a7c3e9f0d214'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'server_keys',
        sa.Column('id', ID, nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('scope', sa.String(length=8), nullable=False),
        sa.Column('created_by_id', ID, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f('ck_server_keys_scope_known')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_server_keys_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_server_keys')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_server_keys_token_hash')),
    )
    op.create_table(
        'idempotency_keys',
        sa.Column('id', ID, nullable=False),
        sa.Column('principal', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('principal', 'key', name='uq_idempotency_keys_principal_key'),
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)
    op.add_column('plans', sa.Column('features', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    op.add_column('subscriptions', sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.execute("ALTER TABLE subscriptions DROP COLUMN paused_at")
    op.execute("ALTER TABLE plans DROP COLUMN features")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))
    op.drop_table('idempotency_keys')
    op.drop_table('server_keys')
