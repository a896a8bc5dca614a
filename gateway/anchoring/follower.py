"""The follower: tracks ``BatchAnchored`` chaincode events with a persisted checkpoint.

Each event names a batch, the block that committed it and the transaction.
When the batch is one of this gateway's, not finalized yet, and its root is
the stored one, the follower reads it back through another org's peer and
finalizes it. The checkpoint (block and transaction of the last event
handled) is stored in ``trust_cursors`` after each event, so a restarted
gateway resumes where it stopped: no event is missed, and a batch whose
anchor committed while the gateway was down still ends finalized. A
``BatchAnchored`` event for one of our batch ids with another root is logged
as an error and counted (``mismatches``): someone else anchored over it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.anchoring.ledger import AnchoredEvent, AnchorLedger, read_back
from gateway.anchoring.outbox import FINALIZED, BatchStore, StoredBatch
from gateway.clock import Clock
from gateway.ledger.protocol.events import Checkpoint
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CURSOR = "follower:{channel}/{chaincode}"


class Follower:
    """Follows the anchor chaincode's events; see the module docstring."""

    def __init__(
        self,
        store: BatchStore,
        ledger: AnchorLedger,
        *,
        on_change: Callable[[StoredBatch], None],
        clock: Clock,
        retry_s: float = 1.0,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._on_change = on_change
        self._clock = clock
        self._retry_s = retry_s
        self._cursor = CURSOR.format(channel=ledger.fabric_channel, chaincode=ledger.chaincode)
        self._task: asyncio.Task[None] | None = None
        self.position: Checkpoint | None = None
        self.events_seen = 0
        self.finalized = 0
        self.mismatches = 0
        self.last_error: str | None = None

    async def load(self) -> None:
        raw = await self._store.cursor(self._cursor)
        # No checkpoint yet: read the whole chain once (it is ours to check).
        self.position = Checkpoint.from_json(raw) if raw else Checkpoint(0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="anchoring-follower")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            try:
                async for event in self._ledger.anchored_events(self.position):
                    await self.handle(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("chaincode event stream interrupted (%s); resuming", self.last_error)
            await asyncio.sleep(self._retry_s)

    async def handle(self, event: AnchoredEvent) -> None:
        """Apply one ``BatchAnchored`` event, then persist the checkpoint past it."""
        self.events_seen += 1
        record = event.record
        channel = record.get("channel")
        batch_id = str(record.get("batch_id", ""))
        prefix, _, number = batch_id.rpartition("/")
        batch = None
        if isinstance(channel, str) and prefix == channel and number.isdigit():
            batch = await self._store.by_number(channel, int(number))
        if batch is not None and batch.batch_id == batch_id:
            if record.get("root") != batch.root.hex():
                self.mismatches += 1
                log.error(
                    "batch %s was anchored in block %d with root %s, but the store has %s",
                    batch_id,
                    event.block_number,
                    record.get("root"),
                    batch.root.hex(),
                )
            elif batch.state != FINALIZED:
                back = await read_back(self._ledger, batch_id)
                readable = back is not None and back.get("root") == batch.root.hex()
                if readable and await self._store.state(batch) != FINALIZED:
                    done = await self._store.mark_finalized(
                        batch, event.tx_id, event.block_number, now_ms=self._clock()
                    )
                    self.finalized += 1
                    self._on_change(done)
        self.position = Checkpoint(event.block_number, event.tx_id)
        await self._store.set_cursor(self._cursor, self.position.to_json(), now_ms=self._clock())
