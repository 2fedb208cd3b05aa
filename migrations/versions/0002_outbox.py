"""outbox, processed events and worker heartbeats

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("published_at", mysql.DATETIME(fsp=6), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("id", name=op.f("uq_outbox_events_id")),
    )
    op.create_index("ix_outbox_events_published_at_seq", "outbox_events", ["published_at", "seq"])
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("beat_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("last_event_at", mysql.DATETIME(fsp=6), nullable=True),
        sa.Column("processed", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_worker_heartbeats")),
    )


def downgrade():
    op.drop_table("worker_heartbeats")
    op.drop_table("processed_events")
    op.drop_index("ix_outbox_events_published_at_seq", table_name="outbox_events")
    op.drop_table("outbox_events")
