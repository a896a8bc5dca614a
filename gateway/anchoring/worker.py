"""The anchor worker: one per channel, anchors recorded batches in order.

For each batch, oldest first: submit ``AnchorBatch`` (→ *confirmed* once
ordering accepted it, with its transaction id), wait for the commit, read the
record back through another org's peer and compare the root (→ *finalized*
with the block number). A batch is finished before the next is submitted:
the chaincode only accepts a batch whose ``prev_root`` is the channel's
committed head, so there is nothing to gain from pipelining and everything
to lose.

Failures (peer or orderer unavailable, deadlines, an endorsing peer behind by
a block, an invalid commit) are retried with exponential backoff and full
jitter, for ever: a batch is never skipped. A resubmission is idempotent in
the chaincode (the identical batch returns the stored record and writes
nothing), and a batch found at start-up is first looked up on the ledger, so
a crash between recording and anchoring anchors the batch exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Callable

from gateway.anchoring.errors import BatchRefused, LedgerCheckFailed
from gateway.anchoring.ledger import AnchorLedger, read_back
from gateway.anchoring.outbox import CONFIRMED, FINALIZED, RECORDED, BatchStore, StoredBatch
from gateway.clock import Clock
from gateway.errors import AnchorlineError
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)

StatusCallback = Callable[[StoredBatch], None]
#: Chaincode refusal reasons no retry can fix (chaincode/runtime/errors.py).
_PERMANENT = ("forbidden:", "bad_input:")


def backoff_s(attempt: int, initial_ms: int, max_ms: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, initial·2^attempt)] ms,
    never below a tenth of ``initial``."""
    cap = min(max_ms, initial_ms * (2 ** min(attempt, 30)))
    return max(initial_ms / 10.0, rng.uniform(0, cap)) / 1000.0


def _describe(exc: Exception) -> str:
    if isinstance(exc, AnchorlineError):
        message = getattr(exc, "chaincode_message", None) or exc.message
        return f"{exc.code}: {message}"
    return f"{type(exc).__name__}: {exc}"


class ChannelWorker:
    """Anchors one channel's batches, strictly in order."""

    def __init__(
        self,
        channel: str,
        store: BatchStore,
        ledger: AnchorLedger,
        *,
        on_change: StatusCallback,
        clock: Clock,
        retry_initial_ms: int,
        retry_max_ms: int,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self._store = store
        self._ledger = ledger
        self._on_change = on_change
        self._clock = clock
        self._initial = retry_initial_ms
        self._max = retry_max_ms
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._queue: deque[tuple[StoredBatch, bool]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        # The batch being anchored now, and since when (monotonic seconds).
        self.current: tuple[str, float] | None = None
        self.attempts = 0
        self.anchored = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def queued_events(self) -> int:
        return sum(b.size for b, _ in self._queue)

    def enqueue(self, batch: StoredBatch, *, recovered: bool = False) -> None:
        """Anchor ``batch`` after those already queued; ``recovered`` batches (found in the
        store at start-up) are looked up on the ledger before any resubmission."""
        self._queue.append((batch, recovered))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"anchor-worker-{self.channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, recovered = self._queue[0]
            self.current = (batch.batch_id, time.monotonic())
            await self._anchor(batch, recovered)
            self.current = None
            self._queue.popleft()

    async def _anchor(self, batch: StoredBatch, recovered: bool) -> None:
        attempt = 0
        lookup = recovered or batch.state != RECORDED
        while True:
            try:
                batch = await self._step(batch, lookup)
                if batch.state == FINALIZED:
                    self.last_error = None
                    self.anchored += 1
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.attempts += 1
                self.last_error = f"batch {batch.batch_id}: {_describe(exc)}"
                level = logging.ERROR if isinstance(exc, BatchRefused) else logging.WARNING
                log.log(
                    level,
                    "anchoring %s failed (attempt %d): %s",
                    batch.batch_id,
                    attempt + 1,
                    _describe(exc),
                )
                with contextlib.suppress(Exception):
                    await self._store.note_attempt(batch, self.last_error[:2000])
                # Whatever happened, the ledger may hold the batch now: look before resubmitting.
                lookup = True
                await asyncio.sleep(backoff_s(attempt, self._initial, self._max, self._rng))
                attempt += 1

    async def _step(self, batch: StoredBatch, lookup: bool) -> StoredBatch:
        """One pass: returns the batch in a later state (finalized when done)."""
        if await self._store.state(batch) == FINALIZED:
            # The follower got there first.
            return dataclasses.replace(batch, state=FINALIZED)
        tx_id = batch.tx_id if batch.state == CONFIRMED else None
        if lookup:
            anchored = await self._ledger.get_batch(batch.batch_id)
            if anchored is not None:
                if anchored.get("root") != batch.root.hex():
                    raise BatchRefused(
                        f"the ledger holds batch {batch.batch_id} with root "
                        f"{anchored.get('root')}, the store with {batch.root.hex()}"
                    )
                tx_id = str(anchored["tx_id"])
            elif batch.state == CONFIRMED:
                # Accepted for ordering earlier but not committed: it may still commit,
                # or have been lost; a resubmission is idempotent either way.
                tx_id = None
        if tx_id is None:
            try:
                tx_id = await self._ledger.submit_batch(batch.record.to_json())
            except AnchorlineError as exc:
                message = str(getattr(exc, "chaincode_message", None) or "")
                if message.startswith(_PERMANENT):
                    raise BatchRefused(
                        f"the anchor chaincode refused batch {batch.batch_id}: {message}"
                    ) from exc
                raise
        if batch.state != CONFIRMED or batch.tx_id != tx_id:
            batch = await self._store.mark_confirmed(batch, tx_id, now_ms=self._clock())
            self._on_change(batch)
        outcome = await self._ledger.commit_status(tx_id)
        if not outcome.valid:
            raise LedgerCheckFailed(
                f"anchor transaction {tx_id} of {batch.batch_id} committed invalid "
                f"({outcome.code_name}) in block {outcome.block_number}"
            )
        record = await read_back(self._ledger, batch.batch_id)
        if record is None:
            raise LedgerCheckFailed(
                f"batch {batch.batch_id} committed in block {outcome.block_number} but the "
                "reader org's peer does not return it yet"
            )
        if record.get("root") != batch.root.hex():
            raise BatchRefused(
                f"the reader org's peer holds batch {batch.batch_id} with root "
                f"{record.get('root')}, not {batch.root.hex()}"
            )
        anchored_tx = str(record.get("tx_id") or tx_id)
        if anchored_tx != tx_id:
            # Ours was an idempotent resubmission: the batch was anchored by an earlier one.
            outcome = await self._ledger.commit_status(anchored_tx)
        if await self._store.state(batch) == FINALIZED:
            return dataclasses.replace(batch, state=FINALIZED)
        batch = await self._store.mark_finalized(
            batch, anchored_tx, outcome.block_number, now_ms=self._clock()
        )
        self._on_change(batch)
        return batch
