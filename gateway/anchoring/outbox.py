"""The trust path's store: batches recorded before they are anchored (the outbox).

A batch is written here, with its leaf hashes and its signed record, in one
transaction *before* anything is sent to the ledger. Its ``state`` then moves
``recorded`` → ``confirmed`` (the anchor transaction was accepted for
ordering; its id is stored) → ``finalized`` (committed VALID in a block and
read back from another org's peer). The per-event statuses in
``event_statuses`` move in the same transaction as their batch, so a crash
never leaves a batch and its events disagreeing.

Invariants a caller may rely on: batch numbers of a channel are 1, 2, 3…
without gaps; batch ``n + 1`` starts at batch ``n``'s ``last_seq + 1`` and
carries its root as ``prev_root``; the unique constraints on
``(channel, number)`` and ``(channel, first_seq)`` make a second writer's
duplicate fail instead of forking the chain.

With a ``fence`` (several gateways on one PostgreSQL: the anchor lease's
:meth:`~gateway.anchoring.lease.Lease.fence`) every write transaction checks
first that this process still holds the lease, so a replaced anchorer can
write nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.anchoring.errors import StoreDamaged
from gateway.anchoring.proof import BatchRecord
from gateway.store.models import (
    anchors,
    batch_leaves,
    batches,
    event_statuses,
    events,
    identities,
    trust_cursors,
)

HASH_SIZE: Final = 32
RECORDED: Final = "recorded"
CONFIRMED: Final = "confirmed"
FINALIZED: Final = "finalized"
#: Statuses in lifecycle order (an event without a status row is pending).
LIFECYCLE: Final = ("pending", CONFIRMED, FINALIZED)


@dataclasses.dataclass(frozen=True)
class StoredBatch:
    """One batch row with its anchor: what the worker, the proofs and the audit read."""

    row_id: int
    channel: str
    number: int
    record: BatchRecord
    state: str
    tx_id: str | None
    block_number: int | None
    attempts: int
    last_error: str | None
    created_ms: int

    @property
    def batch_id(self) -> str:
        """The batch's id in the anchor chaincode (``<channel>/<number>``)."""
        return self.record.batch_id

    @property
    def first_seq(self) -> int:
        return self.record.first_seq

    @property
    def last_seq(self) -> int:
        return self.record.last_seq

    @property
    def size(self) -> int:
        return self.record.leaf_count

    @property
    def root(self) -> bytes:
        return self.record.root


def chaincode_batch_id(channel: str, number: int) -> str:
    """The chaincode batch id of batch ``number`` of ``channel``."""
    return f"{channel}/{number}"


def _split_hashes(blob: bytes, expected: int, where: str) -> list[bytes]:
    if len(blob) != expected * HASH_SIZE:
        raise StoreDamaged(
            f"{where}: stored leaves are {len(blob)} bytes, expected {expected} hashes of "
            f"{HASH_SIZE} bytes; run `anchorline audit` on the channel"
        )
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def _select_batches() -> Any:
    return select(
        batches.c.id,
        batches.c.channel,
        batches.c.number,
        batches.c.record,
        batches.c.state,
        batches.c.created_ms,
        anchors.c.tx_id,
        anchors.c.block_number,
        anchors.c.attempts,
        anchors.c.last_error,
    ).select_from(batches.outerjoin(anchors, anchors.c.batch_id == batches.c.id))


def _to_batch(row: Any) -> StoredBatch:
    try:
        record = BatchRecord.from_json(json.loads(bytes(row.record)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreDamaged(f"batch row {row.id} holds an unreadable record: {exc}") from None
    return StoredBatch(
        row_id=int(row.id),
        channel=str(row.channel),
        number=int(row.number),
        record=record,
        state=str(row.state),
        tx_id=row.tx_id,
        block_number=None if row.block_number is None else int(row.block_number),
        attempts=int(row.attempts or 0),
        last_error=row.last_error,
        created_ms=int(row.created_ms),
    )


Fence = Callable[[AsyncConnection], Awaitable[None]]


class BatchStore:
    """Reads and writes ``batches``, ``anchors``, ``batch_leaves``, ``event_statuses``."""

    def __init__(self, engine: AsyncEngine, *, fence: Fence | None = None) -> None:
        self._engine = engine
        self._fence = fence

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, fenced when the store has a fence."""
        async with self._engine.begin() as conn:
            if self._fence is not None:
                await self._fence(conn)
            yield conn

    # -- batches -------------------------------------------------------------------------

    async def record(
        self, record: BatchRecord, number: int, leaves: Sequence[bytes], *, now_ms: int
    ) -> StoredBatch:
        """Store a new batch, its leaves and its (not yet submitted) anchor, atomically.

        Raises the database's IntegrityError when the channel already has batch
        ``number`` or a batch starting at ``record.first_seq``.
        """
        if len(leaves) != record.leaf_count:
            raise StoreDamaged(
                f"batch {record.batch_id}: {len(leaves)} leaves for a count of {record.leaf_count}"
            )
        async with self._write() as conn:
            result = await conn.execute(
                insert(batches).values(
                    channel=record.channel,
                    number=number,
                    first_seq=record.first_seq,
                    last_seq=record.last_seq,
                    size=record.leaf_count,
                    root=record.root,
                    prev_root=record.prev_root,
                    record=json.dumps(record.to_json(), sort_keys=True).encode(),
                    signature=record.signature,
                    state=RECORDED,
                    created_ms=now_ms,
                )
            )
            key = result.inserted_primary_key
            if key is None:
                raise StoreDamaged("the database did not return the new batch's id")
            row_id = int(key[0])
            await conn.execute(
                insert(batch_leaves).values(batch_id=row_id, hashes=b"".join(leaves))
            )
            await conn.execute(insert(anchors).values(batch_id=row_id, status=RECORDED, attempts=0))
        return StoredBatch(
            row_id=row_id,
            channel=record.channel,
            number=number,
            record=record,
            state=RECORDED,
            tx_id=None,
            block_number=None,
            attempts=0,
            last_error=None,
            created_ms=now_ms,
        )

    async def last(self, channel: str) -> StoredBatch | None:
        """The channel's newest batch, or None."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    _select_batches()
                    .where(batches.c.channel == channel)
                    .order_by(batches.c.number.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else _to_batch(row)

    async def unfinished(self, channel: str | None = None) -> list[StoredBatch]:
        """Batches not yet finalized, oldest first (per channel, by number)."""
        query = _select_batches().where(batches.c.state != FINALIZED)
        if channel is not None:
            query = query.where(batches.c.channel == channel)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.order_by(batches.c.channel, batches.c.number))
            return [_to_batch(r) for r in rows]

    async def listing(
        self, channel: str, *, after_number: int = 0, limit: int = 1000
    ) -> list[StoredBatch]:
        """The channel's batches with ``number > after_number``, in order."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                _select_batches()
                .where(batches.c.channel == channel, batches.c.number > after_number)
                .order_by(batches.c.number)
                .limit(limit)
            )
            return [_to_batch(r) for r in rows]

    async def by_number(self, channel: str, number: int) -> StoredBatch | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    _select_batches().where(
                        batches.c.channel == channel, batches.c.number == number
                    )
                )
            ).first()
        return None if row is None else _to_batch(row)

    async def containing(self, channel: str, seq: int) -> StoredBatch | None:
        """The batch holding event ``seq`` of ``channel``, or None if it is not batched."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    _select_batches()
                    .where(batches.c.channel == channel, batches.c.first_seq <= seq)
                    .order_by(batches.c.first_seq.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        batch = _to_batch(row)
        return batch if batch.last_seq >= seq else None

    async def channels(self) -> list[str]:
        """Channels that have stored events."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(events.c.channel).distinct())
            return sorted(str(r[0]) for r in rows)

    async def last_event_seq(self, channel: str) -> int:
        async with self._engine.connect() as conn:
            top = (
                await conn.execute(
                    select(func.max(events.c.seq)).where(events.c.channel == channel)
                )
            ).scalar()
        return int(top or 0)

    # -- leaves --------------------------------------------------------------------------

    async def leaves(self, batch: StoredBatch) -> list[bytes]:
        """The batch's leaf hashes, in seq order."""
        async with self._engine.connect() as conn:
            blob = (
                await conn.execute(
                    select(batch_leaves.c.hashes).where(batch_leaves.c.batch_id == batch.row_id)
                )
            ).scalar()
        if blob is None:
            raise StoreDamaged(f"batch {batch.batch_id} has no stored leaves")
        return _split_hashes(bytes(blob), batch.size, f"batch {batch.batch_id}")

    async def log_size(self, channel: str) -> int:
        """Leaves in the channel log: the events of every recorded batch."""
        async with self._engine.connect() as conn:
            top = (
                await conn.execute(
                    select(func.max(batches.c.last_seq)).where(batches.c.channel == channel)
                )
            ).scalar()
        return int(top or 0)

    async def log_leaves(self, channel: str, start: int, end: int) -> list[bytes]:
        """Leaf hashes ``[start, end)`` of the channel log (leaf ``i`` is event ``i + 1``)."""
        if end <= start:
            return []
        first_seq, last_seq = start + 1, end
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(batches.c.first_seq, batches.c.size, batch_leaves.c.hashes)
                .select_from(batches.join(batch_leaves, batch_leaves.c.batch_id == batches.c.id))
                .where(
                    batches.c.channel == channel,
                    batches.c.last_seq >= first_seq,
                    batches.c.first_seq <= last_seq,
                )
                .order_by(batches.c.first_seq)
            )
            out: list[bytes] = []
            for row in rows:
                hashes = _split_hashes(bytes(row.hashes), int(row.size), f"{channel} log")
                lo = max(first_seq, int(row.first_seq))
                hi = min(last_seq, int(row.first_seq) + int(row.size) - 1)
                out.extend(hashes[lo - int(row.first_seq) : hi - int(row.first_seq) + 1])
        return out

    # -- lifecycle -----------------------------------------------------------------------

    async def _set_statuses(
        self,
        conn: AsyncConnection,
        batch: StoredBatch,
        status: str,
        tx_id: str | None,
        block_number: int | None,
        now_ms: int,
    ) -> None:
        in_batch = and_(
            event_statuses.c.channel == batch.channel,
            event_statuses.c.seq >= batch.first_seq,
            event_statuses.c.seq <= batch.last_seq,
        )
        await conn.execute(delete(event_statuses).where(in_batch))
        await conn.execute(
            insert(event_statuses),
            [
                {
                    "channel": batch.channel,
                    "seq": seq,
                    "status": status,
                    "batch_id": batch.row_id,
                    "leaf_index": seq - batch.first_seq,
                    "tx_id": tx_id,
                    "block_number": block_number,
                    "updated_ms": now_ms,
                }
                for seq in range(batch.first_seq, batch.last_seq + 1)
            ],
        )

    async def mark_confirmed(self, batch: StoredBatch, tx_id: str, *, now_ms: int) -> StoredBatch:
        """The anchor transaction ``tx_id`` was accepted for ordering."""
        async with self._write() as conn:
            await conn.execute(
                update(batches).where(batches.c.id == batch.row_id).values(state=CONFIRMED)
            )
            await conn.execute(
                update(anchors)
                .where(anchors.c.batch_id == batch.row_id)
                .values(
                    status=CONFIRMED,
                    tx_id=tx_id,
                    submitted_ms=now_ms,
                    confirmed_ms=now_ms,
                    last_error=None,
                )
            )
            await self._set_statuses(conn, batch, CONFIRMED, tx_id, None, now_ms)
        return dataclasses.replace(batch, state=CONFIRMED, tx_id=tx_id, last_error=None)

    async def mark_finalized(
        self, batch: StoredBatch, tx_id: str, block_number: int, *, now_ms: int
    ) -> StoredBatch:
        """Committed VALID in ``block_number`` by ``tx_id`` and read back from another org."""
        async with self._write() as conn:
            await conn.execute(
                update(batches).where(batches.c.id == batch.row_id).values(state=FINALIZED)
            )
            await conn.execute(
                update(anchors)
                .where(anchors.c.batch_id == batch.row_id)
                .values(
                    status=FINALIZED,
                    tx_id=tx_id,
                    block_number=block_number,
                    finalized_ms=now_ms,
                    last_error=None,
                )
            )
            await self._set_statuses(conn, batch, FINALIZED, tx_id, block_number, now_ms)
        return dataclasses.replace(
            batch, state=FINALIZED, tx_id=tx_id, block_number=block_number, last_error=None
        )

    async def note_attempt(self, batch: StoredBatch, error: str | None) -> None:
        """Count one anchoring attempt and remember its failure (visible in status)."""
        async with self._write() as conn:
            await conn.execute(
                update(anchors)
                .where(anchors.c.batch_id == batch.row_id)
                .values(attempts=anchors.c.attempts + 1, last_error=error)
            )

    async def state(self, batch: StoredBatch) -> str | None:
        """The batch's current state in the store (None if its row is gone)."""
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(select(batches.c.state).where(batches.c.id == batch.row_id))
            ).scalar()
        return None if value is None else str(value)

    # -- misc ----------------------------------------------------------------------------

    async def certificate(self, fingerprint: str) -> str | None:
        """The PEM certificate of a sender the gateway has seen (by SHA-256 fingerprint)."""
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(identities.c.certificate).where(identities.c.fingerprint == fingerprint)
                )
            ).scalar()
        return None if value is None else str(value)

    async def cursor(self, name: str) -> str | None:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(trust_cursors.c.value).where(trust_cursors.c.name == name)
                )
            ).scalar()
        return None if value is None else str(value)

    async def set_cursor(self, name: str, value: str, *, now_ms: int) -> None:
        async with self._write() as conn:
            done = await conn.execute(
                update(trust_cursors)
                .where(trust_cursors.c.name == name)
                .values(value=value, updated_ms=now_ms)
            )
            if done.rowcount == 0:
                await conn.execute(
                    insert(trust_cursors).values(name=name, value=value, updated_ms=now_ms)
                )

    async def status_counts(self) -> dict[str, int]:
        """Events per lifecycle status that have a status row (the rest are pending)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(event_statuses.c.status, func.count()).group_by(event_statuses.c.status)
            )
            return {str(s): int(n) for s, n in rows}
