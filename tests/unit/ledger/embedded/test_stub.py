"""The simulation stub: Fabric's read/write-set recording and stub semantics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_pb2
from google.protobuf import timestamp_pb2

from chaincode.runtime.context import composite_key
from gateway.identity.signing import EcdsaSigner
from gateway.ledger.embedded.blocks import new_block
from gateway.ledger.embedded.store import BlockStore, Write
from gateway.ledger.embedded.stub import SimulationStub, StubError

SIGNER = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlockStore]:
    s = BlockStore(tmp_path / "l.sqlite")
    genesis = new_block(0, b"", [b"g"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    s.append(genesis)
    block = new_block(1, s.last_hash, [b"t"], [0], orderer_creator=b"", orderer_signer=SIGNER)
    writes = [Write("cc", k, f"v-{k}".encode(), (1, i)) for i, k in enumerate(["a", "b", "c", "d"])]
    writes.append(Write("cc", composite_key("item", "x"), b"{}", (1, 9)))
    s.append(block, writes=writes)
    yield s
    s.close()


def _stub(store: BlockStore, *args: bytes) -> SimulationStub:
    return SimulationStub(
        store,
        namespace="cc",
        channel_id="ch",
        tx_id="tx1",
        args=args or (b"fn", b"arg1"),
        creator_msp_id="Org1MSP",
        creator_id_bytes=b"cert",
        timestamp=timestamp_pb2.Timestamp(seconds=10),
        transient={"t": b"1"},
        signed_proposal=proposal_pb2.SignedProposal(),
    )


def _kv(stub: SimulationStub) -> kv_rwset_pb2.KVRWSet:
    txrw = rwset_pb2.TxReadWriteSet.FromString(stub.results())
    (ns,) = txrw.ns_rwset
    assert ns.namespace == "cc"
    return kv_rwset_pb2.KVRWSet.FromString(ns.rwset)


async def test_reads_and_writes_are_recorded_sorted_with_versions(store: BlockStore) -> None:
    stub = _stub(store)
    assert await stub.get_state("c") == b"v-c"
    assert await stub.get_state("zz") == b""
    assert await stub.get_state("a") == b"v-a"
    await stub.put_state("b", "new")
    await stub.delete_state("d")
    kv = _kv(stub)
    assert [(r.key, r.HasField("version")) for r in kv.reads] == [
        ("a", True),
        ("c", True),
        ("zz", False),
    ]
    assert (kv.reads[1].version.block_num, kv.reads[1].version.tx_num) == (1, 2)
    assert [(w.key, w.is_delete, w.value) for w in kv.writes] == [
        ("b", False, b"new"),
        ("d", True, b""),
    ]


async def test_no_reads_or_writes_means_an_empty_rwset(store: BlockStore) -> None:
    assert rwset_pb2.TxReadWriteSet.FromString(_stub(store).results()).ns_rwset == []


async def test_range_records_what_it_returned(store: BlockStore) -> None:
    stub = _stub(store)
    keys = [kv.key async for kv in await stub.get_state_by_range("", "")]
    assert keys == ["a", "b", "c", "d"]  # composite keys are excluded
    partial = await stub.get_state_by_range("b", "d")
    first = await partial.__anext__()
    await partial.aclose()
    assert first.key == "b"
    info = _kv(stub).range_queries_info
    assert (info[0].start_key, info[0].end_key, info[0].itr_exhausted) == ("\x01", "", True)
    assert [r.key for r in info[0].raw_reads.kv_reads] == ["a", "b", "c", "d"]
    assert (info[1].itr_exhausted, [r.key for r in info[1].raw_reads.kv_reads]) == (False, ["b"])


async def test_partial_composite_key_scan(store: BlockStore) -> None:
    stub = _stub(store)
    assert stub.create_composite_key("item", ["x"]) == composite_key("item", "x")
    assert stub.split_composite_key(composite_key("item", "x", "y")) == ("item", ["x", "y"])
    found = [kv.key async for kv in await stub.get_state_by_partial_composite_key("item", [])]
    assert found == [composite_key("item", "x")]
    with pytest.raises(StubError, match="U\\+0000"):
        stub.create_composite_key("item", ["bad\x00"])


async def test_pagination_and_its_rules(store: BlockStore) -> None:
    stub = _stub(store)
    page = await stub.get_state_by_range_with_pagination("a", "z", 3)
    assert [kv.key async for kv in page] == ["a", "b", "c"]
    assert (page.metadata.fetched_records_count, page.metadata.bookmark) == (3, "d")
    with pytest.raises(StubError, match="Writes are not allowed"):
        await stub.put_state("k", b"v")
    writer = _stub(store)
    await writer.put_state("k", b"v")
    with pytest.raises(StubError, match="supported only in a read-only transaction"):
        await writer.get_state_by_range_with_pagination("a", "z", 3)


async def test_transaction_facts(store: BlockStore) -> None:
    stub = _stub(store, b"fn", b"x", b"y")
    assert stub.get_function_and_parameters() == ("fn", ["x", "y"])
    assert stub.get_txid() == "tx1"
    assert stub.get_channel_id() == "ch"
    assert stub.get_creator() == {"mspid": "Org1MSP", "idBytes": b"cert"}
    assert stub.get_transient() == {"t": b"1"}
    assert stub.get_tx_timestamp().seconds == 10


async def test_one_event_the_last_one_wins(store: BlockStore) -> None:
    stub = _stub(store)
    assert stub.event() is None
    stub.set_event("first", b"1")
    stub.set_event("second", "2")
    event = stub.event()
    assert event is not None
    assert (event.event_name, event.payload, event.chaincode_id, event.tx_id) == (
        "second",
        b"2",
        "cc",
        "tx1",
    )
    with pytest.raises(StubError, match="event name can not be empty"):
        stub.set_event("", b"")


async def test_refused_calls(store: BlockStore) -> None:
    stub = _stub(store)
    with pytest.raises(StubError, match="key must not be an empty string"):
        await stub.put_state("", b"v")
    with pytest.raises(StubError, match="ExecuteQuery not supported for leveldb"):
        await stub.get_query_result("{}")
    with pytest.raises(StubError, match="private data"):
        await stub.get_private_data("c", "k")
    with pytest.raises(StubError, match="chaincode-to-chaincode"):
        await stub.invoke_chaincode("other", [])
