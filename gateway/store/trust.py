"""The trust path's seam into the store: event statuses.

The anchoring package (issue 8) records batches and anchors and moves
events from pending to confirmed to finalized through :meth:`set_status`;
the gateway publishes each change to the channel's subscribers through a
:class:`gateway.events.publisher.StatusPublisher`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.models import event_statuses


class EventStatusRepository:
    """Writes ``event_statuses``; a missing row means pending."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def set_status(
        self,
        channel: str,
        seqs: Sequence[int],
        status: str,
        *,
        now_ms: int,
        batch_id: int | None = None,
        tx_id: str | None = None,
        block_number: int | None = None,
    ) -> None:
        """Set the status of ``seqs`` in ``channel`` in one transaction."""
        if not seqs:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(event_statuses).where(
                    event_statuses.c.channel == channel, event_statuses.c.seq.in_(list(seqs))
                )
            )
            await conn.execute(
                insert(event_statuses),
                [
                    {
                        "channel": channel,
                        "seq": seq,
                        "status": status,
                        "batch_id": batch_id,
                        "leaf_index": None,
                        "tx_id": tx_id,
                        "block_number": block_number,
                        "updated_ms": now_ms,
                    }
                    for seq in seqs
                ],
            )
