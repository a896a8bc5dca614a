"""Event ids are unique per (channel, signer), not across the whole store.

Revision ID: 0003_event_id_scope
Revises: 0003
Create Date: 2026-12-07

A globally unique id let a member store another member's id first (the
rightful event then answered ``duplicate`` with the squatter as signer) and
learn, from a ``duplicate`` answer, that an id exists in a channel it cannot
read (issue 19 item 4). Existing rows keep their ids: every id unique
globally is unique per (channel, signer) too.
"""

from __future__ import annotations

from alembic import op

revision = "0003_event_id_scope"
down_revision = "0003"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = ("UPDATE", "DELETE")


def _sqlite_triggers(create: bool) -> None:
    for action in _SQLITE_TRIGGERS:
        name = f"events_no_{action.lower()}"
        if create:
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {action} ON events "
                "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
            )
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # SQLite drops a UNIQUE only by rebuilding the table; the rebuild takes
        # the append-only triggers with it, so they are put back afterwards.
        _sqlite_triggers(create=False)
        with op.batch_alter_table("events", recreate="always") as batch:
            batch.drop_constraint("uq_events_id", type_="unique")
            batch.create_unique_constraint(
                "uq_events_channel_signer_id", ["channel", "signer", "id"]
            )
        _sqlite_triggers(create=True)
    else:
        op.drop_constraint("uq_events_id", "events", type_="unique")
        op.create_unique_constraint(
            "uq_events_channel_signer_id", "events", ["channel", "signer", "id"]
        )
    op.create_index("ix_events_id", "events", ["id"])


def downgrade() -> None:
    # Fails if two signers or channels now share an id: that data has no
    # globally unique form.
    op.drop_index("ix_events_id", "events")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_triggers(create=False)
        with op.batch_alter_table("events", recreate="always") as batch:
            batch.drop_constraint("uq_events_channel_signer_id", type_="unique")
            batch.create_unique_constraint("uq_events_id", ["id"])
        _sqlite_triggers(create=True)
    else:
        op.drop_constraint("uq_events_channel_signer_id", "events", type_="unique")
        op.create_unique_constraint("uq_events_id", "events", ["id"])
