"""api bookkeeping: idempotency keys and rate-limit counters

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 03:00:00.000000

Both tables are scratch state of the public API: downgrade drops them, and nothing else depends on them.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("idem_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("completed_at", mysql.DATETIME(fsp=6), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("body", mysql.MEDIUMTEXT(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("principal", "idem_key", name="uq_api_idempotency_keys_principal"),
    )
    op.create_index(op.f("ix_api_idempotency_keys_created_at"), "api_idempotency_keys", ["created_at"])
    op.create_table(
        "api_rate_limits",
        sa.Column("bucket", sa.String(120), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_api_rate_limits")),
    )


def downgrade():
    op.drop_table("api_rate_limits")
    op.drop_table("api_idempotency_keys")
