"""departments, doctor profiles, weekly availability, unavailability and password tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:01:41.562724

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('name', name=op.f('uq_departments_name'))
    )
    op.create_table('doctor_profiles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('specialty', sa.String(length=80), nullable=False),
    sa.Column('licence_number', sa.String(length=40), nullable=False),
    sa.Column('consultation_fee', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('bio', sa.String(length=2000), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_doctor_profiles_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_doctor_profiles')),
    sa.UniqueConstraint('licence_number', name=op.f('uq_doctor_profiles_licence_number'))
    )
    op.create_index(op.f('ix_doctor_profiles_specialty'), 'doctor_profiles', ['specialty'], unique=False)
    op.create_table('password_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('expires_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('used_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_tokens_token_hash'))
    )
    op.create_index(op.f('ix_password_tokens_user_id'), 'password_tokens', ['user_id'], unique=False)
    op.create_table('doctor_departments',
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_doctor_departments_department_id_departments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor_profiles.user_id'], name=op.f('fk_doctor_departments_doctor_id_doctor_profiles')),
    sa.PrimaryKeyConstraint('doctor_id', 'department_id', name=op.f('pk_doctor_departments'))
    )
    op.create_table('unavailability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('leave', 'conference', 'holiday', 'other', name='unavailability_kind'), nullable=False),
    sa.Column('starts_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('ends_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_unavailability_ends_after_starts')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor_profiles.user_id'], name=op.f('fk_unavailability_doctor_id_doctor_profiles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unavailability'))
    )
    op.create_index('ix_unavailability_doctor_id_starts_at', 'unavailability', ['doctor_id', 'starts_at'], unique=False)
    op.create_table('weekly_availability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.CheckConstraint('end_time > start_time', name=op.f('ck_weekly_availability_end_after_start')),
    sa.CheckConstraint('slot_minutes BETWEEN 10 AND 120', name=op.f('ck_weekly_availability_slot_minutes_range')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_weekly_availability_weekday_range')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_weekly_availability_department_id_departments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['doctor_profiles.user_id'], name=op.f('fk_weekly_availability_doctor_id_doctor_profiles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weekly_availability'))
    )
    op.create_index('ix_weekly_availability_doctor_id_weekday', 'weekly_availability', ['doctor_id', 'weekday'], unique=False)


def downgrade():
    # Dropping a table drops its indexes (an index that backs a foreign key cannot be dropped alone).
    for table in ("weekly_availability", "unavailability", "doctor_departments", "password_tokens",
                  "doctor_profiles", "departments"):
        op.drop_table(table)
