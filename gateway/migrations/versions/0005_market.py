"""Marketplace: auctions kept across restarts (market_auctions).

Revision ID: 0003_market
Revises: 0003_event_id_scope
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_market"
down_revision = "0003_event_id_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_auctions",
        sa.Column("auction_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("reserve", sa.BigInteger, nullable=False),
        sa.Column("closes_at_ms", sa.BigInteger, nullable=False),
        sa.Column("premium", sa.Integer, nullable=False),
        sa.Column("seller_msp", sa.String(128), nullable=False),
        sa.Column("seller_fingerprint", sa.String(64), nullable=False),
        sa.Column("open_event_id", sa.String(128), nullable=False),
        sa.Column("open_seq", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("winner_seq", sa.BigInteger, nullable=True),
        sa.Column("buyer_msp", sa.String(128), nullable=True),
        sa.Column("buyer_fingerprint", sa.String(64), nullable=True),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("close_event", sa.Text, nullable=True),
        sa.Column("close_seq", sa.BigInteger, nullable=True),
        sa.Column("settlement_state", sa.String(16), nullable=True),
        sa.Column("settlement", sa.Text, nullable=True),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("auction_id", name="pk_market_auctions"),
        sa.UniqueConstraint("channel", name="uq_market_auctions_channel"),
    )
    op.create_index("ix_market_auctions_state", "market_auctions", ["state"])
    op.create_index("ix_market_auctions_settlement_state", "market_auctions", ["settlement_state"])


def downgrade() -> None:
    op.drop_index("ix_market_auctions_settlement_state", table_name="market_auctions")
    op.drop_index("ix_market_auctions_state", table_name="market_auctions")
    op.drop_table("market_auctions")
