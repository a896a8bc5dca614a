"""Chaincode events: checkpoints, filtering, requests, resume without miss or repeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2

from gateway.errors import InvalidInput
from gateway.ledger.errors import EventStreamError, LedgerPermissionDenied
from gateway.ledger.events import Checkpointer, EventFilter, FileCheckpointer
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.events import ChaincodeEvent, Checkpoint, build_events_request
from gateway.ledger.transport import RpcError, StatusCode
from tests.unit.ledger.ledger_fakes import FakeLedger, FakePeer, make_identity


def _event(block: int, tx: str) -> ChaincodeEvent:
    return ChaincodeEvent(block, tx, "cc", "put", b"{}")


def test_checkpoint_json_round_trip_and_validation() -> None:
    cp = Checkpoint(12, "abc")
    assert Checkpoint.from_json(cp.to_json()) == cp
    for bad in ("", "[]", '{"block_number": -1}', '{"block_number": "7"}', "{"):
        with pytest.raises(InvalidInput):
            Checkpoint.from_json(bad)


def test_filter_drops_what_the_checkpoint_covers() -> None:
    f = EventFilter(Checkpoint(10, "t2"))
    # A peer resending the checkpoint's own event, or older blocks, is not believed.
    sent = [(9, "old"), (10, "t2"), (10, "t3"), (11, "t4"), (10, "t2"), (12, "t5")]
    got = [tx for block, tx in sent if f.accept(_event(block, tx))]
    assert got == ["t3", "t4", "t5"]


def test_filter_with_block_only_checkpoint_starts_at_that_block() -> None:
    f = EventFilter(Checkpoint(10))
    assert not f.accept(_event(9, "a"))
    assert f.accept(_event(10, "b"))
    assert f.accept(_event(12, "c"))
    assert not f.accept(_event(11, "d"))  # going backwards is a resend


def test_events_request_from_checkpoint() -> None:
    data = build_events_request(
        channel_id="ch", chaincode="cc", identity=b"me", checkpoint=Checkpoint(7, "tx")
    )
    request = gateway_pb2.ChaincodeEventsRequest.FromString(data)
    assert request.start_position.specified.number == 7
    assert request.after_transaction_id == "tx"
    assert (request.channel_id, request.chaincode_id, request.identity) == ("ch", "cc", b"me")
    fresh = gateway_pb2.ChaincodeEventsRequest.FromString(
        build_events_request(channel_id="ch", chaincode="cc", identity=b"me", checkpoint=None)
    )
    assert fresh.start_position.HasField("next_commit")
    assert fresh.after_transaction_id == ""


def test_checkpointer_positions() -> None:
    cp = Checkpointer()
    assert cp.checkpoint is None
    cp.checkpoint_event(_event(4, "t"))
    assert cp.checkpoint == Checkpoint(4, "t")
    cp.checkpoint_block(4)
    assert cp.checkpoint == Checkpoint(5, "")


def test_file_checkpointer_persists_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state" / "events.json"
    cp = FileCheckpointer(path)
    assert cp.checkpoint is None
    cp.checkpoint_event(_event(8, "tx8"))
    assert not path.with_name("events.json.tmp").exists()
    assert FileCheckpointer(path).checkpoint == Checkpoint(8, "tx8")


async def _put_events(gw: Gateway, n: int, start: int = 0) -> list[str]:
    contract = gw.network("ch").contract("cc")
    return [
        (await contract.submit("PutWithEvent", f"k{i}", f"v{i}")).transaction_id
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("peer_filters", [True, False])
async def test_restart_from_saved_checkpoint_misses_and_repeats_nothing(
    tmp_path: Path, peer_filters: bool
) -> None:
    ledger = FakeLedger()
    peer = FakePeer(ledger)
    # A peer that ignores after_transaction_id must not make the client repeat events.
    peer.events_honour_after_tx = peer_filters
    identity, key = make_identity()
    gw = Gateway(identity, [peer], signer=key)
    tx_ids = await _put_events(gw, 5)
    checkpointer = FileCheckpointer(tmp_path / "cp.json")
    seen: list[str] = []
    stream = gw.network("ch").chaincode_events("cc", start_block=0, checkpoint=checkpointer)
    async for event in stream:
        seen.append(event.transaction_id)
        checkpointer.checkpoint_event(event)
        if len(seen) == 3:
            break
    await stream.aclose()
    more = await _put_events(gw, 2, start=5)
    # "Restart": a new process reads the file and resumes.
    resumed = FileCheckpointer(tmp_path / "cp.json")
    stream = gw.network("ch").chaincode_events("cc", checkpoint=resumed, start_block=0)
    async with stream:
        async for event in stream:
            seen.append(event.transaction_id)
            resumed.checkpoint_event(event)
            if len(seen) == 7:
                break
    assert seen == tx_ids + more
    assert peer.last_events_request is not None
    assert peer.last_events_request.after_transaction_id == tx_ids[2]


async def test_stream_reconnects_after_peer_loss_without_repeat(tmp_path: Path) -> None:
    ledger = FakeLedger()
    org1, org2 = FakePeer(ledger), FakePeer(ledger, "peer0.org2:9051", "Org2MSP")
    org1.events_break_after = 2
    identity, key = make_identity()
    gw = Gateway(identity, [org1, org2], signer=key)
    tx_ids = await _put_events(gw, 4)
    seen = []
    async with gw.network("ch").chaincode_events("cc", start_block=0) as stream:
        async for event in stream:
            seen.append(event.transaction_id)
            if len(seen) == 4:
                break
    assert seen == tx_ids
    assert "chaincode_events" in org2.calls


async def test_live_events_arrive_after_start() -> None:
    ledger = FakeLedger()
    peer = FakePeer(ledger)
    identity, key = make_identity()
    gw = Gateway(identity, [peer], signer=key)
    stream = gw.network("ch").chaincode_events("cc")  # from the next commit

    async def first() -> str:
        async for event in stream:
            return event.transaction_id
        return ""

    task = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    (tx,) = await _put_events(gw, 1)
    assert await asyncio.wait_for(task, 2) == tx
    await stream.aclose()


async def test_permission_denied_stream_is_a_typed_error() -> None:
    ledger = FakeLedger()
    peer = FakePeer(ledger)
    peer.fail["chaincode_events"] = [RpcError(StatusCode.PERMISSION_DENIED, "access denied")]
    identity, key = make_identity()
    gw = Gateway(identity, [peer], signer=key)
    stream = gw.network("ch").chaincode_events("cc", start_block=0)
    with pytest.raises(Exception) as caught:
        await stream.__anext__()
    # A refusal is not retried as a broken connection would be: it surfaces at once,
    # as the stream stage's error of the permission-denied kind.
    assert isinstance(caught.value, LedgerPermissionDenied)
    assert isinstance(caught.value, EventStreamError)
    assert peer.calls.count("chaincode_events") == 1


def test_unused_event_proto_import_guard() -> None:
    # The fake peer emits real peer.ChaincodeEvent messages.
    assert chaincode_event_pb2.ChaincodeEvent(event_name="x").event_name == "x"
