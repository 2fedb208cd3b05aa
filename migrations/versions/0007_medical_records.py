"""medical records: versioned encounters (notes, vitals), ICD-10 diagnoses, prescriptions, allergies,
allergy acknowledgements and break-glass grants; triggers that freeze signed encounters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 02:19:54.634231

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

CHILD_TABLES = ("diagnoses", "prescriptions")


def upgrade():
    op.create_table('allergies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('substance', sa.String(length=120), nullable=False),
    sa.Column('reaction', sa.String(length=255), nullable=False),
    sa.Column('severity', sa.Enum('mild', 'moderate', 'severe', name='allergy_severity'), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('removed_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('removed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_allergies_patient_id_users')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_allergies_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'], name=op.f('fk_allergies_removed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allergies'))
    )
    op.create_index('ix_allergies_patient_id', 'allergies', ['patient_id'], unique=False)
    op.create_table('break_glass_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('started_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('expires_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['doctor_id'], ['users.id'], name=op.f('fk_break_glass_grants_doctor_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_break_glass_grants_patient_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_grants'))
    )
    op.create_index('ix_break_glass_grants_doctor_id_patient_id_expires_at', 'break_glass_grants', ['doctor_id', 'patient_id', 'expires_at'], unique=False)
    op.create_table('encounters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('doctor_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.SmallInteger(), nullable=False),
    sa.Column('amends_id', sa.Integer(), nullable=True),
    sa.Column('amendment_reason', sa.String(length=500), nullable=True),
    sa.Column('status', sa.Enum('draft', 'signed', name='encounter_status'), nullable=False),
    sa.Column('chief_complaint', sa.String(length=500), nullable=False),
    sa.Column('subjective', sa.Text(), nullable=False),
    sa.Column('objective', sa.Text(), nullable=False),
    sa.Column('assessment', sa.Text(), nullable=False),
    sa.Column('plan', sa.Text(), nullable=False),
    sa.Column('systolic', sa.SmallInteger(), nullable=True),
    sa.Column('diastolic', sa.SmallInteger(), nullable=True),
    sa.Column('heart_rate', sa.SmallInteger(), nullable=True),
    sa.Column('respiratory_rate', sa.SmallInteger(), nullable=True),
    sa.Column('spo2', sa.SmallInteger(), nullable=True),
    sa.Column('temperature_c', sa.Numeric(precision=4, scale=1), nullable=True),
    sa.Column('weight_kg', sa.Numeric(precision=5, scale=1), nullable=True),
    sa.Column('height_cm', sa.Numeric(precision=4, scale=1), nullable=True),
    sa.Column('bmi', sa.Numeric(precision=5, scale=1), nullable=True),
    sa.Column('vitals_recorded_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('signed_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('signed_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status = 'draft' OR signed_at IS NOT NULL", name=op.f('ck_encounters_signed_has_time')),
    sa.CheckConstraint('(version = 1) = (amends_id IS NULL)', name=op.f('ck_encounters_versions_link')),
    sa.ForeignKeyConstraint(['amends_id'], ['encounters.id'], name=op.f('fk_encounters_amends_id_encounters')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_encounters_appointment_id_appointments')),
    sa.ForeignKeyConstraint(['doctor_id'], ['users.id'], name=op.f('fk_encounters_doctor_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_encounters_patient_id_users')),
    sa.ForeignKeyConstraint(['signed_by_id'], ['users.id'], name=op.f('fk_encounters_signed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_encounters')),
    sa.UniqueConstraint('amends_id', name='uq_encounters_amends_id'),
    sa.UniqueConstraint('appointment_id', 'version', name='uq_encounters_appointment_version')
    )
    op.create_index('ix_encounters_patient_id_created_at', 'encounters', ['patient_id', 'created_at'], unique=False)
    op.create_table('diagnoses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('encounter_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], name=op.f('fk_diagnoses_encounter_id_encounters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diagnoses')),
    sa.UniqueConstraint('encounter_id', 'code', name='uq_diagnoses_encounter_id_code')
    )
    op.create_table('prescriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('encounter_id', sa.Integer(), nullable=False),
    sa.Column('drug_name', sa.String(length=120), nullable=False),
    sa.Column('strength', sa.String(length=60), nullable=False),
    sa.Column('form', sa.String(length=40), nullable=False),
    sa.Column('dose', sa.String(length=60), nullable=False),
    sa.Column('route', sa.String(length=40), nullable=False),
    sa.Column('frequency', sa.String(length=60), nullable=False),
    sa.Column('duration_days', sa.SmallInteger(), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=False),
    sa.Column('refills', sa.SmallInteger(), nullable=False),
    sa.Column('instructions', sa.String(length=500), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], name=op.f('fk_prescriptions_encounter_id_encounters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prescriptions'))
    )
    op.create_index('ix_prescriptions_encounter_id', 'prescriptions', ['encounter_id'], unique=False)
    op.create_table('allergy_acknowledgements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prescription_id', sa.Integer(), nullable=False),
    sa.Column('allergy_id', sa.Integer(), nullable=False),
    sa.Column('substance', sa.String(length=120), nullable=False),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=False),
    sa.Column('acknowledged_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_allergy_acknowledgements_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['allergy_id'], ['allergies.id'], name=op.f('fk_allergy_acknowledgements_allergy_id_allergies')),
    sa.ForeignKeyConstraint(['prescription_id'], ['prescriptions.id'], name=op.f('fk_allergy_acknowledgements_prescription_id_prescriptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allergy_acknowledgements'))
    )
    op.create_index(op.f('ix_allergy_acknowledgements_prescription_id'), 'allergy_acknowledgements', ['prescription_id'], unique=False)
    # A signed encounter is never changed, whoever asks: no UPDATE of its row, no diagnosis or prescription
    # added to it or changed. (Deletes: migration 0010.)
    op.execute(
        "CREATE TRIGGER encounters_signed_no_update BEFORE UPDATE ON encounters FOR EACH ROW "
        "IF OLD.status = 'signed' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'encounter is signed: UPDATE refused'; END IF")
    for table in CHILD_TABLES:
        for action, rows in (("insert", ("NEW",)), ("update", ("OLD", "NEW"))):
            condition = " OR ".join(
                f"(SELECT status FROM encounters WHERE id = {row}.encounter_id) = 'signed'" for row in rows)
            op.execute(
                f"CREATE TRIGGER {table}_signed_no_{action} BEFORE {action.upper()} ON {table} FOR EACH ROW "
                f"IF {condition} THEN "
                f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'encounter is signed: {action.upper()} refused'; END IF")


def downgrade():
    for table in CHILD_TABLES:
        for action in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_signed_no_{action}")
    op.execute("DROP TRIGGER IF EXISTS encounters_signed_no_update")
    for table in ("allergy_acknowledgements", "prescriptions", "diagnoses", "encounters", "break_glass_grants",
                  "allergies"):
        op.drop_table(table)
