"""appointments with database-enforced single booking, their status history and sent reminders

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 00:28:57.788578

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('appointments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('ends_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('status', sa.Enum('requested', 'confirmed', 'checked_in', 'completed', 'declined', 'cancelled_by_patient', 'cancelled_by_clinic', 'no_show', name='appointment_status'), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_appointments_ends_after_starts')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_appointments_department_id_departments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor_profiles.user_id'], name=op.f('fk_appointments_doctor_id_doctor_profiles')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_appointments_patient_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('doctor_id', 'starts_at', 'active', name='uq_appointments_doctor_slot'),
    sa.UniqueConstraint('patient_id', 'starts_at', 'active', name='uq_appointments_patient_slot')
    )
    op.create_index('ix_appointments_doctor_id_starts_at', 'appointments', ['doctor_id', 'starts_at'], unique=False)
    op.create_index('ix_appointments_patient_id_starts_at', 'appointments', ['patient_id', 'starts_at'], unique=False)
    op.create_index('ix_appointments_status_starts_at', 'appointments', ['status', 'starts_at'], unique=False)
    op.create_table('appointment_reminders',
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('offset_minutes', sa.Integer(), nullable=False),
    sa.Column('starts_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_appointment_reminders_appointment_id_appointments')),
    sa.PrimaryKeyConstraint('appointment_id', 'offset_minutes', 'starts_at', name=op.f('pk_appointment_reminders'))
    )
    op.create_table('appointment_status_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.Enum('requested', 'confirmed', 'checked_in', 'completed', 'declined', 'cancelled_by_patient', 'cancelled_by_clinic', 'no_show', name='appointment_status'), nullable=True),
    sa.Column('to_status', sa.Enum('requested', 'confirmed', 'checked_in', 'completed', 'declined', 'cancelled_by_patient', 'cancelled_by_clinic', 'no_show', name='appointment_status'), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('starts_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_appointment_status_history_actor_id_users')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_appointment_status_history_appointment_id_appointments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointment_status_history'))
    )
    op.create_index(op.f('ix_appointment_status_history_appointment_id'), 'appointment_status_history', ['appointment_id'], unique=False)


def downgrade():
    for table in ("appointment_reminders", "appointment_status_history", "appointments"):
        op.drop_table(table)
