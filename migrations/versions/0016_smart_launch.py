"""SMART launch context: the audience and the patient in context of authorization codes and refresh tokens

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 05:10:00.000000

A SMART app names the FHIR base URL it will call (`aud`) and may ask for a patient in context
(`launch/patient`): the code carries both to the token exchange, and a refresh token keeps them for every token
it issues. Existing rows keep NULL: the API's audience and no patient context, as before.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TABLES = ("oauth_authorization_codes", "oauth_refresh_tokens")


def upgrade():
    for table in TABLES:
        op.add_column(table, sa.Column("audience", sa.String(255), nullable=True))
        op.add_column(table, sa.Column("launch_patient_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f(f"fk_{table}_launch_patient_id_users"), table, "users",
                              ["launch_patient_id"], ["id"])


def downgrade():
    for table in TABLES:
        op.drop_constraint(op.f(f"fk_{table}_launch_patient_id_users"), table, type_="foreignkey")
        op.drop_column(table, "launch_patient_id")
        op.drop_column(table, "audience")
