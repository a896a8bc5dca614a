"""Trust path: batch leaf hashes and the chaincode-event follower's checkpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_leaves",
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("batches.id", name="fk_batch_leaves_batch_id_batches"),
            nullable=False,
            autoincrement=False,
        ),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_batch_leaves"),
    )
    op.create_table(
        "trust_cursors",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_trust_cursors"),
    )


def downgrade() -> None:
    op.drop_table("trust_cursors")
    op.drop_table("batch_leaves")
