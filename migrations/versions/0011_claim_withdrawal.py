"""claim withdrawal: a submitted claim can be withdrawn by the clinic, with who, when and why

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 06:30:00.000000

Adds `withdrawn` to the `claim_status` ENUM (the column stays NOT NULL and keeps its indexes and the CHECKs of
0008) and the columns `withdrawn_by_id`, `withdrawn_at`, `withdrawal_reason`. A new CHECK refuses a withdrawn
claim without its time and reason, or with an insurer's decision or payment.

Downgrade: the old ENUM has no `withdrawn`. A withdrawn claim becomes `denied` with reason code `WITHDRAWN` and
nothing approved: the old code counts a denied claim exactly as the new one counts a withdrawn one (no insurer
share, not open), so every invoice keeps its figures. The withdrawal's who and why are dropped with the columns
(the invoice history keeps them).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD_STATUSES = ('submitted', 'approved', 'partially_approved', 'denied', 'paid')
NEW_STATUSES = (*OLD_STATUSES, 'withdrawn')


def upgrade():
    op.alter_column('claims', 'status', existing_type=sa.Enum(*OLD_STATUSES, name='claim_status'),
                    type_=sa.Enum(*NEW_STATUSES, name='claim_status'), existing_nullable=False)
    op.add_column('claims', sa.Column('withdrawn_by_id', sa.Integer(), nullable=True))
    op.add_column('claims', sa.Column('withdrawn_at', mysql.DATETIME(fsp=6), nullable=True))
    op.add_column('claims', sa.Column('withdrawal_reason', sa.String(length=500), nullable=True))
    op.create_foreign_key(op.f('fk_claims_withdrawn_by_id_users'), 'claims', 'users', ['withdrawn_by_id'], ['id'])
    op.create_check_constraint(
        op.f('ck_claims_withdrawn_recorded_undecided'), 'claims',
        "status <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawal_reason IS NOT NULL"
        " AND approved_amount IS NULL AND paid_amount = 0)")


def downgrade():
    op.execute("UPDATE claims SET status = 'denied', reason_code = 'WITHDRAWN', approved_amount = 0,"
               " decided_at = withdrawn_at WHERE status = 'withdrawn'")
    op.drop_constraint(op.f('ck_claims_withdrawn_recorded_undecided'), 'claims', type_='check')
    op.drop_constraint(op.f('fk_claims_withdrawn_by_id_users'), 'claims', type_='foreignkey')
    op.drop_column('claims', 'withdrawal_reason')
    op.drop_column('claims', 'withdrawn_at')
    op.drop_column('claims', 'withdrawn_by_id')
    op.alter_column('claims', 'status', existing_type=sa.Enum(*NEW_STATUSES, name='claim_status'),
                    type_=sa.Enum(*OLD_STATUSES, name='claim_status'), existing_nullable=False)
