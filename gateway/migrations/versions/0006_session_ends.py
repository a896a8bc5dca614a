"""Session ends followed across gateway processes (session_ends).

Revision ID: 0006_session_ends
Revises: 0003_market
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_session_ends"
down_revision = "0003_market"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_ends",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("ended_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_ends")
