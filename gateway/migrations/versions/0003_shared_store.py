"""Shared store: per-channel sequence heads, the anchor lease, shared secrets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

``channel_heads`` is kept on PostgreSQL only: there several gateway processes
take sequence numbers from it inside their commits. SQLite has one writer
process, which keeps its counters in memory (``gateway.store.events``); a
table it never updated would only mislead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table(
            "channel_heads",
            sa.Column("channel", sa.String(64), nullable=False),
            sa.Column("last_seq", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("channel", name="pk_channel_heads"),
        )
        # Channels stored before this revision continue where they are.
        op.execute(
            "INSERT INTO channel_heads (channel, last_seq) "
            "SELECT channel, max(seq) FROM events GROUP BY channel"
        )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("acquired_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "shared_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_shared_secrets"),
    )


def downgrade() -> None:
    op.drop_table("shared_secrets")
    op.drop_table("leases")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("channel_heads")
