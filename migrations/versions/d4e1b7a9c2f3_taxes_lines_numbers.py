"""billing details, tax rates, a line on every invoice, gapless invoice numbers

Revision ID: d4e1b7a9c2f3
Revises: c4d1e8a2f6b3
Create Date: 2026-11-26 03:40:00

Existing invoices keep the number their customers already saw ("INV-" and the id,
six digits), get their one line (a period invoice had none stored) and a subtotal
equal to their total (no tax); the "INV" counter continues after the highest id.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e1b7a9c2f3'
down_revision = "c4d1e8a2f6b3"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"

    op.add_column('users', sa.Column('billing_name', sa.String(200), nullable=False, server_default=''))
    op.add_column('users', sa.Column('billing_company', sa.String(200), nullable=False, server_default=''))
    op.add_column('users', sa.Column('billing_address', sa.Text(), nullable=False, server_default=''))
    op.add_column('users', sa.Column('billing_country', sa.String(2), nullable=True))
    op.add_column('users', sa.Column('tax_id', sa.String(40), nullable=True))

    op.create_table(
        'tax_rates',
        sa.Column('id', Id, nullable=False),
        sa.Column('name', sa.String(80), nullable=False),
        sa.Column('percent', sa.Numeric(7, 4), nullable=False),
        sa.Column('country', sa.String(2), nullable=False),
        sa.Column('inclusive', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('percent >= 0 AND percent <= 100', name=op.f('ck_tax_rates_percent_range')),
        sa.CheckConstraint('length(country) = 2', name=op.f('ck_tax_rates_country_code')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    )
    op.create_index('uq_tax_rates_active_country', 'tax_rates', ['country'], unique=True,
                    postgresql_where=sa.text('active'), sqlite_where=sa.text('active'))

    op.create_table(
        'invoice_number_counters',
        sa.Column('prefix', sa.String(20), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('last_number', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('prefix', 'year', name=op.f('pk_invoice_number_counters')),
    )

    op.add_column('invoice_lines', sa.Column('tax_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('invoice_lines', sa.Column('tax_rate_percent', sa.Numeric(7, 4), nullable=False,
                                             server_default='0'))
    op.add_column('invoice_lines', sa.Column('tax_name', sa.String(80), nullable=False, server_default=''))

    op.add_column('invoices', sa.Column('number', sa.String(40), nullable=True))
    op.add_column('invoices', sa.Column('subtotal_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('invoices', sa.Column('tax_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.add_column('invoices', sa.Column('tax_note', sa.Text(), nullable=False, server_default=''))

    # Backfill: the numbers already shown, the subtotal, and the one line of each period invoice.
    pad = "printf('%06d', id)" if sqlite else (
        "CASE WHEN id < 1000000 THEN lpad(CAST(id AS TEXT), 6, '0') ELSE CAST(id AS TEXT) END"
    )
    op.execute(f"UPDATE invoices SET number = 'INV-' || {pad}, subtotal_cents = total")
    op.execute(
        "INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_amount, amount, "
        "period_start, period_end, tax_cents, tax_rate_percent, tax_name) "
        "SELECT i.id, 1, i.description, 1, i.total, i.total, i.period_start, i.period_end, 0, 0, '' "
        "FROM invoices i WHERE NOT EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id)"
    )
    op.execute(
        "INSERT INTO invoice_number_counters (prefix, year, last_number) "
        "SELECT 'INV', 0, COALESCE(MAX(id), 0) FROM invoices"
    )

    op.create_index('uq_invoices_number', 'invoices', ['number'], unique=True)
    if not sqlite:  # SQLite cannot add a CHECK to a table (a new database has it from the models)
        op.create_check_constraint(op.f('ck_invoices_total_is_sum'), 'invoices', 'total = subtotal_cents + tax_cents')
    op.create_index('ix_invoices_unnumbered', 'invoices', ['id'],
                    postgresql_where=sa.text('number IS NULL'), sqlite_where=sa.text('number IS NULL'))


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index('ix_invoices_unnumbered', table_name='invoices')
    op.drop_index('uq_invoices_number', table_name='invoices')
    if not sqlite:
        op.drop_constraint(op.f('ck_invoices_total_is_sum'), 'invoices', type_='check')
    op.execute("DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM invoices WHERE kind = 'period')")
    for table, columns in (
        ('invoices', ('tax_note', 'tax_cents', 'subtotal_cents', 'number')),
        ('invoice_lines', ('tax_name', 'tax_rate_percent', 'tax_cents')),
        ('users', ('tax_id', 'billing_country', 'billing_address', 'billing_company', 'billing_name')),
    ):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table('invoice_number_counters')
    op.drop_index('uq_tax_rates_active_country', table_name='tax_rates')
    op.drop_table('tax_rates')
