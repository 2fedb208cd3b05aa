"""rate limits in memory: the API's rate-limit counters move to a MEMORY table

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 03:10:00.000000

A counter is written on every API request; on InnoDB each of those writes commits and flushes the redo log.
The counters need no durability (a restart only forgets the current windows), so a MEMORY table serves them
without a disk write, still shared by every web process. Downgrade moves them back to InnoDB.
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE api_rate_limits ENGINE=MEMORY")


def downgrade():
    op.execute("ALTER TABLE api_rate_limits ENGINE=InnoDB")
