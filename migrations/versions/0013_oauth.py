"""oauth: the authorization server's clients, grants, refresh tokens, codes and revoked access tokens

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 02:30:00.000000

Also `users.service_account`: the identity of a client-credentials client (no password, no pages).
Secrets, refresh tokens and codes are kept only as SHA-256 hex digests.
Downgrade drops the tables and the column: every registered client and connected app is lost.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _dt(name, nullable=True):
    return sa.Column(name, mysql.DATETIME(fsp=6), nullable=nullable)


def upgrade():
    op.add_column("users", sa.Column("service_account", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.Enum("public", "confidential", name="client_kind"), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("allowed_scopes", sa.String(2000), nullable=False),
        sa.Column("service_user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _dt("created_at", False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _dt("secret_rotated_at"),
        _dt("last_used_at"),
        sa.ForeignKeyConstraint(["service_user_id"], ["users.id"], name=op.f("fk_oauth_clients_service_user_id_users")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_oauth_clients_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_clients_client_id")),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(2000), nullable=False),
        _dt("created_at", False),
        _dt("last_used_at"),
        _dt("revoked_at"),
        sa.Column("revoked_reason", sa.String(40), nullable=True),
        sa.ForeignKeyConstraint(["client_pk"], ["oauth_clients.id"], name=op.f("fk_oauth_grants_client_pk_oauth_clients")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_oauth_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_grants")),
    )
    op.create_index(op.f("ix_oauth_grants_client_pk"), "oauth_grants", ["client_pk"])
    op.create_index(op.f("ix_oauth_grants_user_id"), "oauth_grants", ["user_id"])
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(2000), nullable=False),
        _dt("issued_at", False),
        _dt("expires_at", False),
        _dt("used_at"),
        sa.ForeignKeyConstraint(["grant_id"], ["oauth_grants.id"], name=op.f("fk_oauth_refresh_tokens_grant_id_oauth_grants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oauth_refresh_tokens_token_hash")),
    )
    op.create_index(op.f("ix_oauth_refresh_tokens_grant_id"), "oauth_refresh_tokens", ["grant_id"])
    op.create_table(
        "oauth_authorization_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=False),
        sa.Column("scope", sa.String(2000), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(10), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        _dt("created_at", False),
        _dt("expires_at", False),
        _dt("used_at"),
        sa.ForeignKeyConstraint(["client_pk"], ["oauth_clients.id"], name=op.f("fk_oauth_authorization_codes_client_pk_oauth_clients")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_oauth_authorization_codes_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_authorization_codes_code_hash")),
    )
    op.create_table(
        "oauth_revoked_access_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        _dt("expires_at", False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_oauth_revoked_access_tokens")),
    )
    op.create_index(op.f("ix_oauth_revoked_access_tokens_expires_at"), "oauth_revoked_access_tokens", ["expires_at"])


def downgrade():
    for table in ("oauth_revoked_access_tokens", "oauth_authorization_codes", "oauth_refresh_tokens",
                  "oauth_grants", "oauth_clients"):
        op.drop_table(table)
    op.drop_column("users", "service_account")
