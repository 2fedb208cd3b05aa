"""session details: last seen, address and browser of each session; the browsers a person has signed in from

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 06:00:00.000000

`user_sessions` gains `last_seen_at` (the idle timeout counts from it; written at most once a minute), `ip`,
`browser` (a summary such as "Chrome on Linux") and `session_version` (the user's version when the session began,
so that the list of sessions leaves out those a password change or a deactivation ended). Open sessions take
their user's current version and their start as last seen. `known_browsers` keeps, per person, the SHA-256 of the
user's id with a browser's long-lived random cookie: a sign-in from a browser not in it is emailed to them.

Downgrade drops the table and the columns (sessions stay valid; the next sign-in of everyone counts as a first).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("user_sessions", sa.Column("last_seen_at", mysql.DATETIME(fsp=6), nullable=True))
    op.add_column("user_sessions", sa.Column("ip", sa.String(length=45), server_default="", nullable=False))
    op.add_column("user_sessions", sa.Column("browser", sa.String(length=80), server_default="", nullable=False))
    op.add_column("user_sessions", sa.Column("session_version", sa.Integer(), server_default="1", nullable=False))
    op.execute("UPDATE user_sessions s JOIN users u ON u.id = s.user_id"
               " SET s.last_seen_at = s.created_at, s.session_version = u.session_version")
    op.alter_column("user_sessions", "last_seen_at", existing_type=mysql.DATETIME(fsp=6), nullable=False)
    op.create_table(
        "known_browsers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_known_browsers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_browsers")),
        sa.UniqueConstraint("user_id", "browser_hash", name=op.f("uq_known_browsers_user_id_browser_hash")),
    )


def downgrade():
    op.drop_table("known_browsers")
    for column in ("session_version", "browser", "ip", "last_seen_at"):
        op.drop_column("user_sessions", column)
