"""billing: price list, invoices with lines, payments, refunds (maker-checker), insurance claims, invoice history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 02:20:17.609799

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invoice_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_invoice_counters'))
    )
    op.create_table('price_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('price >= 0', name=op.f('ck_price_items_price_not_negative')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_price_items_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_items')),
    sa.UniqueConstraint('code', name=op.f('uq_price_items_code'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('live', sa.Boolean(), nullable=True),
    sa.Column('doctor_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'issued', 'partially_paid', 'paid', 'void', name='invoice_status'), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('discount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('discount_reason', sa.String(length=200), nullable=True),
    sa.Column('tax_rate', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('tax', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('patient_paid', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('insurer_paid', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('balance', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('notes', sa.String(length=500), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('issued_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('paid_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('voided_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('void_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('balance = total - patient_paid - insurer_paid', name=op.f('ck_invoices_balance_adds_up')),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_invoices_balance_not_negative')),
    sa.CheckConstraint('discount >= 0 AND discount <= subtotal', name=op.f('ck_invoices_discount_within_subtotal')),
    sa.CheckConstraint('patient_paid >= 0 AND insurer_paid >= 0', name=op.f('ck_invoices_paid_not_negative')),
    sa.CheckConstraint('total = subtotal - discount + tax', name=op.f('ck_invoices_total_adds_up')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_invoices_appointment_id_appointments')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_invoices_created_by_id_users')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_invoices_department_id_departments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor_profiles.user_id'], name=op.f('fk_invoices_doctor_id_doctor_profiles')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_invoices_patient_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('appointment_id', 'live', name='uq_invoices_appointment_live'),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    op.create_index('ix_invoices_department_id_issued_on', 'invoices', ['department_id', 'issued_on'], unique=False)
    op.create_index('ix_invoices_doctor_id_issued_on', 'invoices', ['doctor_id', 'issued_on'], unique=False)
    op.create_index('ix_invoices_issued_on', 'invoices', ['issued_on'], unique=False)
    op.create_index('ix_invoices_patient_id_created_at', 'invoices', ['patient_id', 'created_at'], unique=False)
    op.create_index('ix_invoices_status_issued_on', 'invoices', ['status', 'issued_on'], unique=False)
    op.create_index('ix_invoices_status_due_on', 'invoices', ['status', 'due_on'], unique=False)
    op.create_table('claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('payer', sa.String(length=120), nullable=False),
    sa.Column('policy_number', sa.String(length=64), nullable=False),
    sa.Column('claimed_amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('approved_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('paid_amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('status', sa.Enum('submitted', 'approved', 'partially_approved', 'denied', 'paid', name='claim_status'), nullable=False),
    sa.Column('payer_reference', sa.String(length=100), nullable=True),
    sa.Column('reason_code', sa.String(length=40), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('submitted_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('decided_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('paid_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.CheckConstraint('approved_amount IS NULL OR (approved_amount >= 0 AND approved_amount <= claimed_amount)', name=op.f('ck_claims_approved_within_claimed')),
    sa.CheckConstraint('claimed_amount > 0', name=op.f('ck_claims_claimed_positive')),
    sa.CheckConstraint('paid_amount >= 0', name=op.f('ck_claims_paid_not_negative')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_claims_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_claims_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims'))
    )
    op.create_index(op.f('ix_claims_invoice_id'), 'claims', ['invoice_id'], unique=False)
    op.create_index('ix_claims_status_submitted_at', 'claims', ['status', 'submitted_at'], unique=False)
    op.create_table('invoice_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('from_status', sa.Enum('draft', 'issued', 'partially_paid', 'paid', 'void', name='invoice_status'), nullable=True),
    sa.Column('to_status', sa.Enum('draft', 'issued', 'partially_paid', 'paid', 'void', name='invoice_status'), nullable=True),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_invoice_history_actor_id_users')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_history_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_history'))
    )
    op.create_index(op.f('ix_invoice_history_invoice_id'), 'invoice_history', ['invoice_id'], unique=False)
    op.create_table('invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('price_item_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('line_total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_invoice_lines_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_invoice_lines_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['price_item_id'], ['price_items.id'], name=op.f('fk_invoice_lines_price_item_id_price_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    op.create_index(op.f('ix_invoice_lines_invoice_id'), 'invoice_lines', ['invoice_id'], unique=False)
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('method', sa.Enum('cash', 'card', 'bank_transfer', name='payment_method'), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payments_amount_positive')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payments_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_payments_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_payments_idempotency_key'))
    )
    op.create_index(op.f('ix_payments_invoice_id'), 'payments', ['invoice_id'], unique=False)
    op.create_index('ix_payments_method_paid_on', 'payments', ['method', 'paid_on'], unique=False)
    op.create_index('ix_payments_paid_on', 'payments', ['paid_on'], unique=False)
    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('requested', 'approved', 'rejected', 'recorded', name='refund_status'), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('recorded_on', sa.Date(), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.CheckConstraint('decided_by_id IS NULL OR decided_by_id <> requested_by_id', name=op.f('ck_refunds_checker_not_maker')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_refunds_decided_by_id_users')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_refunds_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_refunds_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_refunds_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds'))
    )
    op.create_index(op.f('ix_refunds_invoice_id'), 'refunds', ['invoice_id'], unique=False)
    op.create_index(op.f('ix_refunds_payment_id'), 'refunds', ['payment_id'], unique=False)
    op.create_index('ix_refunds_recorded_on', 'refunds', ['recorded_on'], unique=False)
    op.create_index('ix_refunds_status', 'refunds', ['status'], unique=False)


def downgrade():
    for table in ("refunds", "payments", "invoice_lines", "invoice_history", "claims", "invoices", "price_items",
                  "invoice_counters"):
        op.drop_table(table)
