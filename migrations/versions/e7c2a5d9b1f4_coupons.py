"""coupons, promotion codes, redemptions, and the coupon of a discount line

Revision ID: e7c2a5d9b1f4
Revises: d4e1b7a9c2f3
Create Date: 2026-11-26 04:40:00
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7c2a5d9b1f4'
down_revision = 'd4e1b7a9c2f3'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'coupons',
        sa.Column('id', Id, nullable=False),
        sa.Column('name', sa.String(80), nullable=False),
        sa.Column('percent_off', sa.Numeric(7, 4), nullable=True),
        sa.Column('amount_off', sa.BigInteger(), nullable=True),
        sa.Column('currency', sa.String(3), nullable=True),
        sa.Column('duration', sa.String(16), nullable=False),
        sa.Column('duration_periods', sa.Integer(), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('max_redemptions', sa.Integer(), nullable=True),
        sa.Column('times_redeemed', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("duration IN ('once', 'repeating', 'forever')", name=op.f('ck_coupons_duration_known')),
        sa.CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name=op.f('ck_coupons_percent_or_amount')),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)", name=op.f('ck_coupons_percent_range')
        ),
        sa.CheckConstraint(
            "amount_off IS NULL OR (amount_off > 0 AND currency IS NOT NULL)", name=op.f('ck_coupons_amount_positive')
        ),
        sa.CheckConstraint(
            "(duration = 'repeating') = (duration_periods IS NOT NULL) AND "
            "(duration_periods IS NULL OR duration_periods > 0)",
            name=op.f('ck_coupons_periods_if_repeating'),
        ),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions", name=op.f('ck_coupons_within_max')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    )
    op.create_table(
        'coupon_plans',
        sa.Column('coupon_id', Id, nullable=False),
        sa.Column('plan_id', Id, nullable=False),
        sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_coupon_plans_coupon_id_coupons'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_coupon_plans_plan_id_plans'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('coupon_id', 'plan_id', name=op.f('pk_coupon_plans')),
    )
    op.create_table(
        'promotion_codes',
        sa.Column('id', Id, nullable=False),
        sa.Column('coupon_id', Id, nullable=False),
        sa.Column('code', sa.String(64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('max_redemptions', sa.Integer(), nullable=True),
        sa.Column('times_redeemed', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("code = upper(code)", name=op.f('ck_promotion_codes_code_upper')),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR times_redeemed <= max_redemptions", name=op.f('ck_promotion_codes_within_max')
        ),
        sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_promotion_codes_coupon_id_coupons')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_promotion_codes')),
        sa.UniqueConstraint('code', name=op.f('uq_promotion_codes_code')),
    )
    op.create_table(
        'coupon_redemptions',
        sa.Column('id', Id, nullable=False),
        sa.Column('coupon_id', Id, nullable=False),
        sa.Column('promotion_code_id', Id, nullable=True),
        sa.Column('user_id', Id, nullable=False),
        sa.Column('subscription_id', Id, nullable=False),
        sa.Column('first_period', sa.Integer(), nullable=False),
        sa.Column('end_period', sa.Integer(), nullable=True),
        sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_coupon_redemptions_coupon_id_coupons')),
        sa.ForeignKeyConstraint(
            ['promotion_code_id'], ['promotion_codes.id'],
            name=op.f('fk_coupon_redemptions_promotion_code_id_promotion_codes'),
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_coupon_redemptions_user_id_users')),
        sa.ForeignKeyConstraint(
            ['subscription_id'], ['subscriptions.id'], name=op.f('fk_coupon_redemptions_subscription_id_subscriptions')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemptions')),
        sa.UniqueConstraint('coupon_id', 'user_id', name='uq_coupon_redemptions_coupon_user'),
    )
    op.create_index(
        'ix_coupon_redemptions_subscription', 'coupon_redemptions', ['subscription_id', 'first_period'], unique=False
    )
    with op.batch_alter_table('invoice_lines') as batch:
        batch.add_column(sa.Column('coupon_id', Id, nullable=True))
        batch.create_foreign_key(op.f('fk_invoice_lines_coupon_id_coupons'), 'coupons', ['coupon_id'], ['id'])


def downgrade():
    with op.batch_alter_table('invoice_lines') as batch:
        batch.drop_constraint(op.f('fk_invoice_lines_coupon_id_coupons'), type_='foreignkey')
        batch.drop_column('coupon_id')
    op.drop_index('ix_coupon_redemptions_subscription', table_name='coupon_redemptions')
    op.drop_table('coupon_redemptions')
    op.drop_table('promotion_codes')
    op.drop_table('coupon_plans')
    op.drop_table('coupons')
