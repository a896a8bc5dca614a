"""The embedded ledger's storage: blocks, transaction index, world state, events in SQLite.

One SQLite transaction per block holds the block, its transactions' index
entries, the valid writes and the chaincode events, so a process killed at any
instant (SIGKILL included) leaves either the whole block or none of it: no half
block is ever visible, and the height continues from the last whole block.
WAL journal with ``synchronous=FULL``: a committed block survives a power cut.

Keys are stored as their UTF-8 bytes (BLOB) so range scans order them by bytes,
as Fabric's LevelDB state database does (which is also code-point order).

Not thread-safe: the engine uses one store from its event loop thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from fabric_protos.common import common_pb2

from gateway.ledger.embedded.blocks import header_hash
from gateway.ledger.embedded.errors import LedgerCorrupted

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    tx_id TEXT PRIMARY KEY, block INTEGER NOT NULL, idx INTEGER NOT NULL, code INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    block INTEGER NOT NULL, tx INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, idx INTEGER NOT NULL, chaincode TEXT NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (block, idx)) WITHOUT ROWID;
"""

#: A key's version: the (block number, transaction index) that last wrote it.
Version = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Write:
    """One valid write to commit: ``value`` None deletes the key."""

    namespace: str
    key: str
    value: bytes | None
    version: Version


@dataclasses.dataclass(frozen=True)
class TxEntry:
    """A transaction's place and validation code in a block."""

    tx_id: str
    index: int
    code: int


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """A chaincode event (serialized ``peer.ChaincodeEvent``) of a VALID transaction."""

    block: int
    index: int
    chaincode: str
    data: bytes


class BlockStore:
    """SQLite file holding one channel's blocks and state."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._height, self._last_hash = self._read_tip()

    def close(self) -> None:
        self._db.close()

    # -- reading --------------------------------------------------------------------------

    def _read_tip(self) -> tuple[int, bytes]:
        row = self._db.execute(
            "SELECT number, hash, data FROM blocks ORDER BY number DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return 0, b""
        number, stored_hash, data = row
        block = common_pb2.Block.FromString(data)
        if block.header.number != number or header_hash(block.header) != stored_hash:
            raise LedgerCorrupted(
                f"{self.path}: block {number} does not match its stored hash; the ledger "
                "file was altered"
            )
        return int(number) + 1, bytes(stored_hash)

    @property
    def height(self) -> int:
        """Number of blocks (the next block's number)."""
        return self._height

    @property
    def last_hash(self) -> bytes:
        """Header hash of the last block (``b""`` before the genesis block)."""
        return self._last_hash

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def block(self, number: int) -> common_pb2.Block | None:
        row = self._db.execute("SELECT data FROM blocks WHERE number = ?", (number,)).fetchone()
        return None if row is None else common_pb2.Block.FromString(row[0])

    def transaction(self, tx_id: str) -> tuple[int, int, int] | None:
        """``(block, index, validation code)`` of a committed transaction id, or None."""
        row = self._db.execute(
            "SELECT block, idx, code FROM txs WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def get(self, namespace: str, key: str) -> tuple[bytes, Version] | None:
        """The committed value and version of ``key``, or None when it does not exist."""
        row = self._db.execute(
            "SELECT value, block, tx FROM state WHERE ns = ? AND key = ?",
            (namespace, key.encode()),
        ).fetchone()
        return None if row is None else (bytes(row[0]), (int(row[1]), int(row[2])))

    def scan(
        self, namespace: str, start: str, end: str, *, limit: int | None = None
    ) -> list[tuple[str, bytes, Version]]:
        """Keys in ``[start, end)`` in byte order (``end == ""``: no upper bound)."""
        sql = "SELECT key, value, block, tx FROM state WHERE ns = ? AND key >= ?"
        params: list[object] = [namespace, start.encode()]
        if end:
            sql += " AND key < ?"
            params.append(end.encode())
        sql += " ORDER BY key"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            (bytes(k).decode(), bytes(v), (int(b), int(t)))
            for k, v, b, t in self._db.execute(sql, params)
        ]

    def events(self, from_block: int, *, limit_blocks: int = 64) -> list[StoredEvent]:
        """Events of VALID transactions in blocks ``from_block …`` (a bounded window)."""
        rows = self._db.execute(
            "SELECT block, idx, chaincode, data FROM events WHERE block >= ? AND block < ? "
            "ORDER BY block, idx",
            (from_block, from_block + limit_blocks),
        )
        return [StoredEvent(int(b), int(i), str(c), bytes(d)) for b, i, c, d in rows]

    def blocks(self, start: int = 0) -> Iterator[common_pb2.Block]:
        for number in range(start, self._height):
            block = self.block(number)
            if block is not None:
                yield block

    def verify_chain(self) -> int:
        """Check every block's number, data hash and link; returns the height."""
        from gateway.ledger.embedded.blocks import data_hash

        previous = b""
        for number in range(self._height):
            block = self.block(number)
            if block is None or block.header.number != number:
                raise LedgerCorrupted(f"{self.path}: block {number} is missing")
            if bytes(block.header.previous_hash) != previous:
                raise LedgerCorrupted(
                    f"{self.path}: block {number} does not link to block {number - 1}"
                )
            if data_hash(list(block.data.data)) != bytes(block.header.data_hash):
                raise LedgerCorrupted(f"{self.path}: block {number}'s data hash does not match")
            previous = header_hash(block.header)
        return self._height

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        block: common_pb2.Block,
        *,
        transactions: Sequence[TxEntry] = (),
        writes: Sequence[Write] = (),
        events: Sequence[tuple[int, str, bytes]] = (),
        meta: dict[str, str] | None = None,
    ) -> None:
        """Append ``block`` with its index entries, valid writes and events, atomically."""
        number = int(block.header.number)
        if number != self._height or bytes(block.header.previous_hash) != self._last_hash:
            raise LedgerCorrupted(
                f"block {number} does not continue the chain at height {self._height}"
            )
        block_hash = header_hash(block.header)
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "INSERT INTO blocks (number, hash, data) VALUES (?, ?, ?)",
                (number, block_hash, block.SerializeToString()),
            )
            # A duplicate id keeps its first entry: that is the one that counts.
            cur.executemany(
                "INSERT OR IGNORE INTO txs (tx_id, block, idx, code) VALUES (?, ?, ?, ?)",
                [(t.tx_id, number, t.index, t.code) for t in transactions],
            )
            for w in writes:
                if w.value is None:
                    cur.execute(
                        "DELETE FROM state WHERE ns = ? AND key = ?",
                        (w.namespace, w.key.encode()),
                    )
                else:
                    cur.execute(
                        "INSERT OR REPLACE INTO state (ns, key, value, block, tx) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (w.namespace, w.key.encode(), w.value, w.version[0], w.version[1]),
                    )
            cur.executemany(
                "INSERT INTO events (block, idx, chaincode, data) VALUES (?, ?, ?, ?)",
                [(number, idx, cc, data) for idx, cc, data in events],
            )
            for name, value in (meta or {}).items():
                cur.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)
                )
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                cur.execute("ROLLBACK")
            raise
        self._height = number + 1
        self._last_hash = block_hash
