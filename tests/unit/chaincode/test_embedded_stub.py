"""The contracts run unchanged under the embedded ledger's stub (gateway/ledger/embedded)."""

from __future__ import annotations

import json

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_pb2
from google.protobuf import timestamp_pb2

from chaincode.anchorline import CONTRACTS
from chaincode.runtime import dispatch
from tests.unit.chaincode.ccfakes import T0, issue, make_ca, sign_batch

embedded_stub = pytest.importorskip("gateway.ledger.embedded.stub")
embedded_store = pytest.importorskip("gateway.ledger.embedded.store")


@pytest.fixture
def store(tmp_path):
    s = embedded_store.BlockStore(tmp_path / "ledger.sqlite")
    yield s
    s.close()


def stub_for(store, identity, *args: str):
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(T0)
    return embedded_stub.SimulationStub(
        store,
        namespace="anchorline",
        channel_id="anchorline",
        tx_id="ab" * 32,
        args=[a.encode() for a in args],
        creator_msp_id=identity.msp_id,
        creator_id_bytes=identity.cert_pem,
        timestamp=ts,
        transient={},
        signed_proposal=proposal_pb2.SignedProposal(),
    )


def written_keys(stub) -> list[str]:
    rw = rwset_pb2.TxReadWriteSet.FromString(stub.results())
    return [w.key for ns in rw.ns_rwset for w in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).writes]


async def test_admin_work_records_writes_and_the_event(store):
    admin = issue(make_ca("Org1"), "Org1MSP", "admin", role="admin")
    stub = stub_for(store, admin, "access:RegisterChannel", "premium")
    response = await dispatch(CONTRACTS, stub)
    assert response.status == 200, response.message
    assert stub.event().event_name == "ChannelRegistered"
    assert written_keys(stub) == ["\x00access.channel\x00premium\x00"]


async def test_anchor_batch_runs_on_the_embedded_stub(store):
    gw = issue(make_ca("Org1"), "Org1MSP", "gw", role="admin")
    batch = sign_batch(
        gw,
        {
            "batch_id": "b1",
            "channel": "c1",
            "root": "ab" * 32,
            "leaf_count": 1,
            "first_seq": 1,
            "last_seq": 1,
            "prev_root": "",
        },
    )
    stub = stub_for(store, gw, "anchor:AnchorBatch", json.dumps(batch))
    response = await dispatch(CONTRACTS, stub)
    assert response.status == 200, response.message
    assert json.loads(stub.event().payload)["batch_id"] == "b1"
    assert len(written_keys(stub)) == 3
    scan = stub_for(store, gw, "access:ListGrants", "premium")
    assert (
        await dispatch(CONTRACTS, scan)
    ).message == "not_found: channel premium is not registered"
