"""Block hashing (Fabric's rules) and the SQLite block store."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2

from gateway.identity.signing import EcdsaSigner
from gateway.ledger.embedded.blocks import data_hash, header_bytes, header_hash, new_block
from gateway.ledger.embedded.errors import LedgerCorrupted
from gateway.ledger.embedded.store import BlockStore, TxEntry, Write

SIGNER = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))


def _header(number: int, prev: bytes = b"", data: bytes = b"") -> common_pb2.BlockHeader:
    return common_pb2.BlockHeader(number=number, previous_hash=prev, data_hash=data)


@pytest.mark.parametrize(
    ("number", "integer"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),  # a leading zero keeps it positive (two's complement)
        (256, "02020100"),
        (2**64 - 1, "020900ffffffffffffffff"),
    ],
)
def test_header_bytes_are_fabric_asn1(number: int, integer: str) -> None:
    encoded = header_bytes(_header(number, b"foo", b"bar"))
    body = bytes.fromhex(integer) + b"\x04\x03foo" + b"\x04\x03bar"
    assert encoded == b"\x30" + bytes([len(body)]) + body


def test_long_form_lengths() -> None:
    encoded = header_bytes(_header(5, b"p" * 200, b"d" * 32))
    # SEQUENCE of 3 + (3 + 200) + (2 + 32) = 240 bytes: long form 0x81 0xf0.
    assert encoded[:3] == b"\x30\x81\xf0"
    assert encoded[3:9] == b"\x02\x01\x05\x04\x81\xc8"
    assert header_hash(_header(5, b"p" * 200, b"d" * 32)) == hashlib.sha256(encoded).digest()


def test_data_hash_is_sha256_of_the_concatenation() -> None:
    assert data_hash([b"ab", b"c"]) == hashlib.sha256(b"abc").digest()
    assert data_hash([]) == hashlib.sha256(b"").digest()


def test_new_block_layout() -> None:
    block = new_block(
        3, b"prev", [b"e1", b"e2"], [0, 11], orderer_creator=b"me", orderer_signer=SIGNER
    )
    assert block.header.number == 3
    assert block.header.previous_hash == b"prev"
    assert block.header.data_hash == data_hash([b"e1", b"e2"])
    assert len(block.metadata.metadata) == 5
    assert block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes([0, 11])
    with pytest.raises(ValueError, match="one validation code per envelope"):
        new_block(1, b"", [b"e"], [], orderer_creator=b"", orderer_signer=SIGNER)


def _chain(store: BlockStore, count: int) -> None:
    for _ in range(count):
        number = store.height
        block = new_block(
            number,
            store.last_hash,
            [f"env{number}".encode()],
            [0],
            orderer_creator=b"o",
            orderer_signer=SIGNER,
        )
        store.append(
            block,
            transactions=[TxEntry(f"tx{number}", 0, 0)],
            writes=[Write("cc", f"k{number}", f"v{number}".encode(), (number, 0))],
            events=[(0, "cc", b"event")],
        )


def test_append_read_and_reopen(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "l.sqlite")
    _chain(store, 3)
    assert store.height == 3
    assert store.transaction("tx1") == (1, 0, 0)
    assert store.get("cc", "k2") == (b"v2", (2, 0))
    assert store.get("other", "k2") is None
    assert [k for k, _, _ in store.scan("cc", "k0", "k2")] == ["k0", "k1"]
    assert [k for k, _, _ in store.scan("cc", "k1", "")] == ["k1", "k2"]
    assert [e.block for e in store.events(1)] == [1, 2]
    assert store.verify_chain() == 3
    last = store.last_hash
    store.close()
    again = BlockStore(tmp_path / "l.sqlite")
    assert (again.height, again.last_hash) == (3, last)
    _chain(again, 1)
    assert again.block(3).header.previous_hash == last  # type: ignore[union-attr]
    again.close()


def test_delete_write_removes_the_key(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "l.sqlite")
    _chain(store, 1)
    block = new_block(1, store.last_hash, [b"d"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    store.append(block, writes=[Write("cc", "k0", None, (1, 0))])
    assert store.get("cc", "k0") is None
    store.close()


def test_a_block_that_does_not_continue_the_chain_is_refused(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "l.sqlite")
    _chain(store, 2)
    stray = new_block(2, b"wrong", [b"x"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    with pytest.raises(LedgerCorrupted, match="does not continue the chain"):
        store.append(stray)
    skipped = new_block(5, store.last_hash, [b"x"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    with pytest.raises(LedgerCorrupted):
        store.append(skipped)
    assert store.height == 2
    store.close()


def test_a_failed_append_writes_nothing(tmp_path: Path) -> None:
    store = BlockStore(tmp_path / "l.sqlite")
    _chain(store, 1)
    block = new_block(1, store.last_hash, [b"x"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    # The same transaction index twice for one event breaks the events' primary key.
    with pytest.raises(sqlite3.IntegrityError):
        store.append(
            block,
            transactions=[TxEntry("new", 0, 0)],
            writes=[Write("cc", "new", b"1", (1, 0))],
            events=[(0, "cc", b"a"), (0, "cc", b"b")],
        )
    assert store.height == 1
    assert store.block(1) is None
    assert store.transaction("new") is None
    assert store.get("cc", "new") is None
    store.close()


def test_tampered_files_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    store = BlockStore(path)
    _chain(store, 3)
    store.close()
    db = sqlite3.connect(path)
    forged = common_pb2.Block.FromString(
        db.execute("SELECT data FROM blocks WHERE number = 1").fetchone()[0]
    )
    forged.data.data[0] = b"forged"
    db.execute("UPDATE blocks SET data = ? WHERE number = 1", (forged.SerializeToString(),))
    db.commit()
    store = BlockStore(path)
    with pytest.raises(LedgerCorrupted, match="data hash"):
        store.verify_chain()
    store.close()
    # Altering the last block is caught on open.
    db.execute("UPDATE blocks SET hash = ? WHERE number = 2", (b"x" * 32,))
    db.commit()
    db.close()
    with pytest.raises(LedgerCorrupted, match="does not match its stored hash"):
        BlockStore(path)
