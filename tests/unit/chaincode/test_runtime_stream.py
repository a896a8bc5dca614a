"""Defects (a) and (b): events on COMPLETED, stream writes serialised, over a fake peer."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fabric_chaincode_python.fabric_shim.handler import STATES, Handler
from fabric_protos.peer import proposal_response_pb2

from chaincode.runtime import ContractChaincode
from chaincode.runtime.peer_stream import PeerStreamHandler, SerialisedWriter
from chaincode.runtime.server import ServerConfig, start_server
from tests.unit.chaincode.ccfakes import T0, issue, make_ca
from tests.unit.chaincode.ccpeer import GrpcPeer, LoopbackPeer, Message, transaction_message
from tests.unit.chaincode.ccsample import CONTRACTS

CLIENTS = 8
CALLS = 50


@pytest.fixture(scope="module")
def alice():
    return issue(make_ca("Org1"), "Org1MSP", "alice", role="member")


def _response(msg):
    assert msg.type == Message.COMPLETED, msg
    return proposal_response_pb2.Response.FromString(msg.payload)


async def _ready(handler):
    for _ in range(500):
        if handler.state == STATES.READY:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"handler stuck in state {handler.state}")


async def _run_loopback(handler_class, alice, n):
    peer = LoopbackPeer()
    handler = handler_class("cc:abc", ContractChaincode(CONTRACTS))
    task = asyncio.create_task(handler.chat_with_peer(peer.stream, peer))
    await _ready(handler)
    futures = []
    for i in range(n):
        tx_id = peer.logic.new_tx()
        futures.append(peer.logic.pending[tx_id])
        peer.send(transaction_message("kv:Put", [f"k{i}", "v"], alice.creator, tx_id, "ch", T0))
    done = await asyncio.wait_for(asyncio.gather(*futures), 10)
    peer.close()
    await asyncio.wait_for(task, 5)
    return peer, done


async def test_the_shim_handler_writes_to_the_stream_concurrently(alice):
    # The defect: with the shim's own handler, writes overlap on one stream.
    peer, _ = await _run_loopback(Handler, alice, 20)
    assert peer.max_concurrent_writes > 1


async def test_our_handler_never_overlaps_stream_writes(alice):
    peer, done = await _run_loopback(PeerStreamHandler, alice, 200)
    assert peer.max_concurrent_writes == 1
    assert len(done) == 200
    assert all(_response(m).status == 200 for m in done)
    assert peer.logic.unexpected == []


async def test_serialised_writer_passes_messages_in_order():
    seen = []

    class _Ctx:
        async def write(self, msg):
            await asyncio.sleep(0)
            seen.append(msg)

        def peer(self):
            return "p"

    writer = SerialisedWriter(_Ctx())
    await asyncio.gather(*(writer.write(i) for i in range(50)))
    assert seen == list(range(50))
    assert writer.peer() == "p"


async def test_the_shim_handler_drops_the_event(alice):
    _, done = await _run_loopback(Handler, alice, 1)
    assert not done[0].HasField("chaincode_event")


async def test_the_event_rides_on_the_completed_message(alice):
    _, done = await _run_loopback(PeerStreamHandler, alice, 1)
    msg = done[0]
    assert msg.HasField("chaincode_event")
    assert msg.chaincode_event.event_name == "Stored"
    assert json.loads(msg.chaincode_event.payload) == {"key": "k0", "tx": msg.txid}


@pytest.fixture
async def server():
    srv, port = await start_server(
        CONTRACTS, ServerConfig(address="127.0.0.1:0", chaincode_id="anchorline:1234", tls=None)
    )
    yield f"127.0.0.1:{port}"
    await srv.stop(0)


async def test_registration_names_the_package_id(server):
    async with GrpcPeer(server) as peer:
        registered = peer.logic.registered
        from fabric_protos.peer import chaincode_pb2

        assert chaincode_pb2.ChaincodeID.FromString(registered.payload).name == "anchorline:1234"


async def test_over_grpc_an_event_is_sent_and_a_refusal_carries_none(server, alice):
    async with GrpcPeer(server) as peer:
        ok = await asyncio.wait_for(peer.invoke("kv:Put", ["a", "1"], alice.creator, T0), 5)
        assert _response(ok).status == 200
        assert ok.chaincode_event.event_name == "Stored"
        refused = await asyncio.wait_for(peer.invoke("kv:Fail", [], alice.creator, T0), 5)
        assert _response(refused).message == "conflict: refused on purpose"
        assert not refused.HasField("chaincode_event")
        again = await asyncio.wait_for(peer.invoke("kv:Put", ["a", "2"], alice.creator, T0), 5)
        assert _response(again).message == "conflict: key a is already set"
        keys = await asyncio.wait_for(peer.invoke("kv:Keys", [], alice.creator, T0), 5)
        assert json.loads(_response(keys).payload) == ["1"]


async def test_eight_concurrent_clients_times_fifty_calls_lose_nothing(server, alice, caplog):
    caplog.set_level(logging.DEBUG)
    async with GrpcPeer(server) as peer:

        async def client(c):
            return [
                await peer.invoke("kv:Put", [f"c{c}-{i}", "secret-value"], alice.creator, T0)
                for i in range(CALLS)
            ]

        results = await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(CLIENTS))), 60)
    flat = [m for r in results for m in r]
    assert len(flat) == CLIENTS * CALLS
    assert all(_response(m).status == 200 for m in flat)
    assert all(m.chaincode_event.event_name == "Stored" for m in flat)
    assert len(peer.logic.state) == CLIENTS * CALLS
    assert peer.logic.unexpected == []
    # Defect (f): no payload, argument or state value reaches a log record.
    assert not [r for r in caplog.records if "secret-value" in r.getMessage()]


async def test_a_transaction_that_cannot_be_handled_is_answered_with_error(alice):
    # The shim sends nothing back when handling raises, so the peer waits for its timeout;
    # ours answers ERROR at once (here: a proposal that does not parse).
    peer = LoopbackPeer()
    handler = PeerStreamHandler("cc:abc", ContractChaincode(CONTRACTS))
    task = asyncio.create_task(handler.chat_with_peer(peer.stream, peer))
    await _ready(handler)
    tx_id = peer.logic.new_tx()
    msg = transaction_message("kv:Put", ["k", "v"], alice.creator, tx_id, "ch", T0)
    msg.proposal.proposal_bytes = b"\x0a\x05junk!"
    peer.send(msg)
    reply = await asyncio.wait_for(peer.logic.pending[tx_id], 5)
    peer.close()
    await asyncio.wait_for(task, 5)
    assert reply.type == Message.ERROR
    assert reply.payload.startswith(b"chaincode could not handle the tx: ")
