"""appointment identifiers: the identifiers programs give the appointments they book (FHIR conditional create)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 05:00:00.000000

A FHIR client books with `POST Appointment` carrying its own `identifier` (system and value) and
`If-None-Exist: identifier=system|value`, so that a retry finds the first booking instead of making a second.
The identifiers are unique per patient (a patient's never collide with another's, nor reveal them) and compared
byte for byte (utf8mb4_bin: FHIR identifiers are case-sensitive). Downgrade drops the table: the appointments
stay, without the programs' identifiers.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appointment_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(255, collation="utf8mb4_bin"), nullable=False),
        sa.Column("value", sa.String(255, collation="utf8mb4_bin"), nullable=False),
        sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"],
                                name=op.f("fk_appointment_identifiers_appointment_id_appointments")),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], name=op.f("fk_appointment_identifiers_patient_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_identifiers")),
        sa.UniqueConstraint("patient_id", "system", "value", name="uq_appointment_identifiers_patient"),
    )
    op.create_index(op.f("ix_appointment_identifiers_appointment_id"), "appointment_identifiers", ["appointment_id"])


def downgrade():
    op.drop_table("appointment_identifiers")
