"""Event repository: group-committed appends and ordered reads.

One :class:`EventRepository` is the single writer of a gateway process. On
SQLite (one process) it keeps the next sequence number per channel in memory
and assigns it inside the transaction that stores the event. On PostgreSQL
any number of processes write the same channels: each commit takes its
numbers from the channel's ``channel_heads`` row with
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in the same transaction (all-new
batches: one statement that also inserts the events, one round trip).
The row lock it takes is held until the commit, so the commits of one
channel are serialised in sequence order across processes: a reader never
sees seq ``n + 1`` before ``n``, and a rolled-back commit gives its numbers
back (gap-free). Either way a duplicate or a rejected event never consumes
a sequence number.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.events.errors import StoreUnavailable
from gateway.events.model import UNREADABLE, StoredEvent

# NewEvent and AppendResult live with the event model (the intake builds them
# without loading the store); re-exported here for the store's callers.
from gateway.events.model import AppendResult as AppendResult
from gateway.events.model import NewEvent as NewEvent
from gateway.store.models import channel_heads, event_statuses, events

_ID_CHUNK = 500
# A shared-store commit that loses a race on an event id (another process stored it
# between our look-up and our insert) is redone with a fresh look-up; each round
# stores the ids another process took as duplicates, so a few rounds always end it.
_SHARED_ATTEMPTS = 5
# A shared-store commit of all-new events in one statement: the numbers come from the
# channels' rows of channel_heads (locked in channel order, held to the end of the
# statement's own transaction), each event gets its channel's next one in batch order.
_ONE_STATEMENT = """
WITH rows AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
        $7::bytea[], $8::bytea[], $9::bigint[]
    ) WITH ORDINALITY AS r(channel, id, type, client_ts, signer, msp_id, signature, body,
                           received_ms, ord)
), wanted AS (
    SELECT channel, count(*)::bigint AS n FROM rows GROUP BY channel
), heads AS (
    INSERT INTO channel_heads (channel, last_seq)
    SELECT channel, n FROM wanted ORDER BY channel
    ON CONFLICT (channel) DO UPDATE SET last_seq = channel_heads.last_seq + EXCLUDED.last_seq
    RETURNING channel, last_seq
)
INSERT INTO events (channel, seq, id, type, client_ts, signer, msp_id, signature, body,
                    received_ms)
SELECT r.channel,
       h.last_seq - w.n + row_number() OVER (PARTITION BY r.channel ORDER BY r.ord),
       r.id, r.type, r.client_ts, r.signer, r.msp_id, r.signature, r.body, r.received_ms
FROM rows r JOIN heads h ON h.channel = r.channel JOIN wanted w ON w.channel = r.channel
RETURNING channel, signer, id, seq
"""

# An event id is one signer's, in one channel: (channel, signer, id) is the dedupe
# key. Scoped so, nobody can store an id first to shadow another member's event,
# and a duplicate answer never tells about a channel or a signer other than the
# sender's own (issue 19 item 4).
EventKey = tuple[str, str, str]


def _key_of(item: NewEvent) -> EventKey:
    return (item.event.channel, item.signer, item.event.id)


def _stored_key(event: StoredEvent) -> EventKey:
    return (event.channel, event.signer, event.id)


def _row_to_event(row: Any) -> StoredEvent:
    try:
        payload = orjson.loads(row.body).get("payload")
    except (orjson.JSONDecodeError, AttributeError):
        # A damaged row (or one nested beyond orjson's reader) still reads, so the
        # trust path can batch its stored bytes; check_servable keeps it from being sent.
        payload = UNREADABLE
    return StoredEvent(
        channel=row.channel,
        seq=row.seq,
        id=row.id,
        type=row.type,
        payload=payload,
        client_ts=row.client_ts,
        signer=row.signer,
        msp_id=row.msp_id,
        signature=bytes(row.signature),
        canonical=bytes(row.body),
        received_at_ms=row.received_ms,
    )


_COLUMNS = (
    "channel",
    "seq",
    "id",
    "type",
    "client_ts",
    "signer",
    "msp_id",
    "signature",
    "body",
    "received_ms",
)
# SQLite allows 32,766 bound parameters per statement.
_SQLITE_ROWS_PER_INSERT = 32766 // len(_COLUMNS)
_ROW_MARKS = "(" + ",".join("?" * len(_COLUMNS)) + ")"
_INSERT_PREFIX = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES "  # noqa: S608 (constant column names)


def _plan(
    batch: Sequence[NewEvent], existing: dict[EventKey, StoredEvent], next_seq: dict[str, int]
) -> tuple[list[AppendResult], list[tuple[Any, ...]]]:
    """Results and rows to insert for ``batch``; ``next_seq`` is advanced in place.

    ``existing`` holds already stored events by (channel, signer, id) (empty
    when the batch is assumed all-new); keys repeated inside the batch count
    as duplicates too.
    """
    seen = dict(existing)
    results: list[AppendResult] = []
    rows: list[tuple[Any, ...]] = []
    for item in batch:
        ev = item.event
        key = _key_of(item)
        earlier = seen.get(key)
        if earlier is not None:
            results.append(
                AppendResult(earlier, duplicate=True, conflict=earlier.canonical != ev.canonical)
            )
            continue
        seq = next_seq[ev.channel]
        next_seq[ev.channel] = seq + 1
        stored = StoredEvent(
            channel=ev.channel,
            seq=seq,
            id=ev.id,
            type=ev.type,
            payload=ev.payload,
            client_ts=ev.client_ts,
            signer=item.signer,
            msp_id=item.msp_id,
            signature=ev.signature,
            canonical=ev.canonical,
            received_at_ms=item.received_ms,
        )
        seen[key] = stored
        results.append(AppendResult(stored))
        rows.append(
            (
                ev.channel,
                seq,
                ev.id,
                ev.type,
                ev.client_ts,
                item.signer,
                item.msp_id,
                ev.signature,
                ev.canonical,
                item.received_ms,
            )
        )
    return results, rows


class _SqliteWriter:
    """The SQLite append path: one thread, one connection, one hand-off per batch.

    Through SQLAlchemy's aiosqlite adapter a commit is four or five round
    trips between the event loop and the driver thread, and sqlite3's
    executemany re-takes the GIL for every row; on a busy loop each of those
    waits up to a switch interval (measured: 100-350 ms per 1,000-event
    commit). Here the whole transaction (sequence lookup, one multi-row
    INSERT, COMMIT) runs in the thread in one go.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="event-writer")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            self._conn = conn
        return self._conn

    async def append(
        self, batch: Sequence[NewEvent], next_seq: dict[str, int]
    ) -> tuple[list[AppendResult], dict[str, int]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._append, list(batch), next_seq)

    def _append(
        self, batch: list[NewEvent], known: dict[str, int]
    ) -> tuple[list[AppendResult], dict[str, int]]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            next_seq = dict(known)
            missing = {item.event.channel for item in batch} - next_seq.keys()
            for channel in missing:
                top = conn.execute(
                    "SELECT max(seq) FROM events WHERE channel = ?", (channel,)
                ).fetchone()[0]
                next_seq[channel] = int(top or 0) + 1
            base = dict(next_seq)
            results, rows = _plan(batch, {}, next_seq)
            try:
                self._insert(conn, rows)
            except sqlite3.IntegrityError:
                # A duplicate id: undo the partial insert, look the ids up, redo.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                next_seq = dict(base)
                results, rows = _plan(batch, self._existing(conn, batch), next_seq)
                self._insert(conn, rows)
            conn.execute("COMMIT")
            return results, next_seq
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT):
            chunk = rows[start : start + _SQLITE_ROWS_PER_INSERT]
            sql = _INSERT_PREFIX + ",".join([_ROW_MARKS] * len(chunk))
            conn.execute(sql, [value for row in chunk for value in row])

    @staticmethod
    def _existing(conn: sqlite3.Connection, batch: list[NewEvent]) -> dict[EventKey, StoredEvent]:
        ids = list({item.event.id for item in batch})
        found: dict[EventKey, StoredEvent] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM events WHERE id IN ({marks})",  # noqa: S608
                chunk,
            )
            for values in cursor:
                event = _row_to_event(_Row(dict(zip(_COLUMNS, values, strict=True))))
                found[_stored_key(event)] = event
        return found

    def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)


class _Row:
    """Attribute access over a plain dict, like an SQLAlchemy row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class EventRepository:
    """Reads and writes the ``events`` table."""

    def __init__(self, engine: AsyncEngine, sqlite_synchronous: str = "FULL") -> None:
        self._engine = engine
        self._next_seq: dict[str, int] = {}
        database = engine.url.database
        self._writer = (
            _SqliteWriter(database, sqlite_synchronous.upper())
            if engine.dialect.name == "sqlite" and database and database != ":memory:"
            else None
        )
        self._shared = engine.dialect.name == "postgresql"

    async def close(self) -> None:
        """Release the SQLite writer thread (the engine is disposed by its owner)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await asyncio.get_running_loop().run_in_executor(None, writer.close)

    async def _load_next(self, conn: AsyncConnection, channels: Iterable[str]) -> None:
        missing = [c for c in set(channels) if c not in self._next_seq]
        if not missing:
            return
        rows = await conn.execute(
            select(events.c.channel, func.max(events.c.seq))
            .where(events.c.channel.in_(missing))
            .group_by(events.c.channel)
        )
        found = {channel: int(top) for channel, top in rows}
        for channel in missing:
            self._next_seq[channel] = found.get(channel, 0) + 1

    async def append(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        """Store ``batch`` in one transaction and return one result per item, in order.

        Returns only after the commit: every non-duplicate result is durable.
        Raises :class:`StoreUnavailable` when the transaction fails; nothing
        of the batch is stored then.
        """
        if self._writer is not None:
            try:
                results, next_seq = await self._writer.append(batch, dict(self._next_seq))
            except (sqlite3.Error, OSError) as exc:
                self._next_seq.clear()
                raise StoreUnavailable(f"could not store events: {type(exc).__name__}") from exc
            self._next_seq = next_seq
            return results
        if self._shared:
            try:
                return await self._append_shared(batch)
            except (SQLAlchemyError, DBAPIError, OSError) as exc:
                raise StoreUnavailable(f"could not store events: {type(exc).__name__}") from exc
        try:
            return await self._append(batch)
        except IntegrityError:
            # Another writer of the same database took a sequence number or an id
            # (in-memory SQLite, several repositories in tests): reload the counters
            # and try once more. PostgreSQL takes the shared path above.
            self._next_seq.clear()
            try:
                return await self._append(batch)
            except (SQLAlchemyError, DBAPIError, OSError) as exc:
                raise StoreUnavailable(f"could not store events: {type(exc).__name__}") from exc
        except (SQLAlchemyError, DBAPIError, OSError) as exc:
            self._next_seq.clear()
            raise StoreUnavailable(f"could not store events: {type(exc).__name__}") from exc

    async def _append(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        # Duplicates are rare (a client retrying after a reconnect): first try
        # the batch as all-new, one INSERT; only a unique-id violation pays
        # for looking the ids up.
        try:
            return await self._append_checked(batch, lookup=False)
        except IntegrityError:
            return await self._append_checked(batch, lookup=True)

    async def _append_checked(self, batch: Sequence[NewEvent], lookup: bool) -> list[AppendResult]:
        async with self._engine.begin() as conn:
            existing: dict[EventKey, StoredEvent] = {}
            if lookup:
                ids = list({item.event.id for item in batch})
                for start in range(0, len(ids), _ID_CHUNK):
                    rows = await conn.execute(
                        select(events).where(events.c.id.in_(ids[start : start + _ID_CHUNK]))
                    )
                    for row in rows:
                        event = _row_to_event(row)
                        existing[_stored_key(event)] = event
            await self._load_next(conn, (item.event.channel for item in batch))
            next_seq = dict(self._next_seq)
            results, rows_out = _plan(batch, existing, next_seq)
            if rows_out:
                await conn.execute(
                    insert(events), [dict(zip(_COLUMNS, row, strict=True)) for row in rows_out]
                )
        # Only after the commit do the counters move on.
        self._next_seq.update(next_seq)
        return results

    async def _append_shared(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        if len({_key_of(item) for item in batch}) == len(batch):
            # Duplicates are rare (a client retrying): first try the batch as all-new in
            # one statement, one round trip; a unique-id violation undoes all of it.
            try:
                return await self._append_one_statement(batch)
            except IntegrityError:
                pass
        lookup = True
        for _attempt in range(_SHARED_ATTEMPTS):
            try:
                return await self._append_shared_once(batch, lookup)
            except IntegrityError:
                # An id stored already (a retry, or another process won a race):
                # the whole transaction, sequence numbers included, rolled back.
                lookup = True
        raise StoreUnavailable(
            f"could not store events: {_SHARED_ATTEMPTS} commits in a row lost races on "
            "event ids; retry"
        )

    async def _append_one_statement(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        """The whole commit as :data:`_ONE_STATEMENT`, in its own transaction (asyncpg's
        autocommit, not the adapter's BEGIN/COMMIT): sequence numbers taken from
        ``channel_heads`` and the events inserted, atomically."""
        columns: list[list[Any]] = [[] for _ in range(9)]
        for item in batch:
            ev = item.event
            values = (
                ev.channel,
                ev.id,
                ev.type,
                ev.client_ts,
                item.signer,
                item.msp_id,
                ev.signature,
                ev.canonical,
                item.received_ms,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        # The pool's raw connection, not an AsyncConnection: SQLAlchemy's connection and
        # transaction objects around a statement it never sees cost more CPU per commit
        # than the statement's own encoding. Returned unused to the pool there is nothing
        # to reset (no transaction was begun on the adapter).
        raw = await self._engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            rows = await driver.fetch(_ONE_STATEMENT, *columns)
        except Exception as exc:
            if type(exc).__name__ == "UniqueViolationError":
                raise IntegrityError(_ONE_STATEMENT, None, exc) from exc
            raise DBAPIError(_ONE_STATEMENT, None, exc) from exc
        finally:
            raw.close()
        seqs = {(str(r["channel"]), str(r["signer"]), str(r["id"])): int(r["seq"]) for r in rows}
        return [
            AppendResult(
                StoredEvent(
                    channel=item.event.channel,
                    seq=seqs[_key_of(item)],
                    id=item.event.id,
                    type=item.event.type,
                    payload=item.event.payload,
                    client_ts=item.event.client_ts,
                    signer=item.signer,
                    msp_id=item.msp_id,
                    signature=item.event.signature,
                    canonical=item.event.canonical,
                    received_at_ms=item.received_ms,
                )
            )
            for item in batch
        ]

    async def _append_shared_once(
        self, batch: Sequence[NewEvent], lookup: bool
    ) -> list[AppendResult]:
        async with self._engine.begin() as conn:
            existing = await self._lookup(conn, batch) if lookup else {}
            wanted: dict[str, int] = {}
            seen = set(existing)
            for item in batch:
                key = _key_of(item)
                if key not in seen:
                    seen.add(key)
                    wanted[item.event.channel] = wanted.get(item.event.channel, 0) + 1
            next_seq: dict[str, int] = {}
            if wanted:
                # One statement for every channel of the commit; rows are locked in
                # channel order, so two commits over the same channels cannot deadlock.
                values = pg_insert(channel_heads).values(
                    [{"channel": c, "last_seq": n} for c, n in sorted(wanted.items())]
                )
                stmt = values.on_conflict_do_update(
                    index_elements=[channel_heads.c.channel],
                    set_={"last_seq": channel_heads.c.last_seq + values.excluded.last_seq},
                ).returning(channel_heads.c.channel, channel_heads.c.last_seq)
                for channel, last in await conn.execute(stmt):
                    next_seq[channel] = int(last) - wanted[channel] + 1
            results, rows_out = _plan(batch, existing, next_seq)
            if rows_out:
                await conn.execute(
                    insert(events), [dict(zip(_COLUMNS, row, strict=True)) for row in rows_out]
                )
        return results

    @staticmethod
    async def _lookup(
        conn: AsyncConnection, batch: Sequence[NewEvent]
    ) -> dict[EventKey, StoredEvent]:
        ids = list({item.event.id for item in batch})
        found: dict[EventKey, StoredEvent] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            rows = await conn.execute(
                select(events).where(events.c.id.in_(ids[start : start + _ID_CHUNK]))
            )
            for row in rows:
                event = _row_to_event(row)
                found[_stored_key(event)] = event
        return found

    async def after(self, channel: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """Events of ``channel`` with ``seq > after_seq``, in order, at most ``limit``."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(events)
                .where(events.c.channel == channel, events.c.seq > after_seq)
                .order_by(events.c.seq)
                .limit(limit)
            )
            return [_row_to_event(r) for r in rows]

    async def get(self, channel: str, seq: int) -> StoredEvent | None:
        """The event at ``seq`` in ``channel``, or ``None``."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(events).where(events.c.channel == channel, events.c.seq == seq)
                )
            ).first()
            return _row_to_event(row) if row is not None else None

    async def last_seq(self, channel: str) -> int:
        """The highest stored sequence of ``channel`` (0 when empty)."""
        async with self._engine.connect() as conn:
            top = (
                await conn.execute(
                    select(func.max(events.c.seq)).where(events.c.channel == channel)
                )
            ).scalar()
            return int(top or 0)

    async def heads(self) -> dict[str, int]:
        """The highest committed sequence of every channel, by whichever process stored it."""
        async with self._engine.connect() as conn:
            if self._shared:
                rows = await conn.execute(select(channel_heads.c.channel, channel_heads.c.last_seq))
            else:
                rows = await conn.execute(
                    select(events.c.channel, func.max(events.c.seq)).group_by(events.c.channel)
                )
            return {str(channel): int(top) for channel, top in rows}

    async def count(self) -> int:
        """Number of stored events (all channels)."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(events))).scalar() or 0)

    async def statuses(self, channel: str, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Trust-path status rows for ``seqs``; a missing seq is pending."""
        if not seqs:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(event_statuses).where(
                    event_statuses.c.channel == channel, event_statuses.c.seq.in_(list(seqs))
                )
            )
            return {
                r.seq: {
                    "status": r.status,
                    "tx_id": r.tx_id,
                    "block_number": r.block_number,
                    "batch_id": r.batch_id,
                }
                for r in rows
            }
