"""signed records are never deleted: the database refuses DELETE of a signed encounter and of a diagnosis or
prescription under one

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 05:45:00.000000

Migration 0007 refuses UPDATE of a signed encounter and INSERT/UPDATE of its diagnoses and prescriptions; the
services also refuse deletes, and this closes the last way round them. (MariaDB does not fire triggers for
rows removed by a foreign key's ON DELETE CASCADE, but deleting the signed encounter itself is refused here
first. TRUNCATE is DDL and fires no trigger: the test suite empties these tables with it.)
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

CHILD_TABLES = ("diagnoses", "prescriptions")


def upgrade():
    op.execute(
        "CREATE TRIGGER encounters_signed_no_delete BEFORE DELETE ON encounters FOR EACH ROW "
        "IF OLD.status = 'signed' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'encounter is signed: DELETE refused'; END IF")
    for table in CHILD_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_signed_no_delete BEFORE DELETE ON {table} FOR EACH ROW "
            f"IF (SELECT status FROM encounters WHERE id = OLD.encounter_id) = 'signed' THEN "
            f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'encounter is signed: DELETE refused'; END IF")


def downgrade():
    for table in CHILD_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_signed_no_delete")
    op.execute("DROP TRIGGER IF EXISTS encounters_signed_no_delete")
