"""Commit statuses from the filtered-block stream, with CommitStatus as the fallback."""

from __future__ import annotations

import asyncio

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import transaction_pb2

from gateway.identity.signing import verify
from gateway.ledger.client import Timeouts
from gateway.ledger.commit_watch import CommitWatcher
from gateway.ledger.endpoints import Failover
from gateway.ledger.errors import CommitError
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.deliver import build_seek_envelope
from gateway.ledger.protocol.proposal import transaction_id
from tests.unit.ledger.ledger_fakes import Block, FakeLedger, StreamingFakePeer, make_identity


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def peer(ledger: FakeLedger) -> StreamingFakePeer:
    return StreamingFakePeer(ledger)


def _gateway(*peers: StreamingFakePeer, **timeouts: float) -> Gateway:
    identity, key = make_identity()
    return Gateway(identity, list(peers), signer=key, timeouts=Timeouts(**timeouts))


async def _live(gw: Gateway) -> None:
    """Submit one transaction (which starts the stream), then wait until the stream is live."""
    await gw.network("ch").contract("testcc").submit("Put", "first", "x")
    watcher = gw.client.commit_watcher("ch")
    assert watcher is not None
    loop = asyncio.get_running_loop()
    for _ in range(200):
        if watcher.covers(loop.time()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the filtered-block stream never went live")


def test_seek_envelope_is_signed_and_asks_for_every_block_from_the_start() -> None:
    identity, key = make_identity()
    creator = identity.serialize()
    for start, field in ((None, "newest"), (42, "specified")):
        envelope = build_seek_envelope("ch", creator, key, start)
        assert verify(identity.public_key, envelope.payload, envelope.signature)
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        assert (channel.type, channel.channel_id) == (common_pb2.DELIVER_SEEK_INFO, "ch")
        assert channel.tx_id == transaction_id(signature.nonce, creator)
        assert signature.creator == creator
        seek = ab_pb2.SeekInfo.FromString(payload.data)
        assert seek.start.WhichOneof("Type") == field
        if start is not None:
            assert seek.start.specified.number == start
        assert seek.stop.specified.number == 2**64 - 1
        assert seek.behavior == ab_pb2.SeekInfo.BLOCK_UNTIL_READY


async def test_statuses_come_from_the_stream_once_it_is_live(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer)
    await _live(gw)
    # Before the stream was live, the first transaction was answered by CommitStatus.
    assert gw.client.counters["commit_status_calls"] == 1
    contract = gw.network("ch").contract("testcc")
    submitted = await asyncio.gather(*(contract.submit("Put", f"k{i}", "v") for i in range(20)))
    assert {s.block_number for s in submitted} == {
        ledger.committed[s.transaction_id].number for s in submitted
    }
    assert gw.client.counters["commit_status_from_blocks"] == 20
    assert peer.calls.count("commit_status") == 1
    # An invalid transaction's code arrives the same way.
    ledger.next_code = transaction_pb2.MVCC_READ_CONFLICT
    with pytest.raises(CommitError) as caught:
        await contract.submit("Put", "k", "v")
    assert caught.value.validation_code_name == "MVCC_READ_CONFLICT"
    assert peer.calls.count("commit_status") == 1
    await gw.close()


async def test_a_status_whose_block_went_by_before_the_wait_is_still_found(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer)
    await _live(gw)
    commit = await gw.network("ch").contract("testcc").submit_async("Put", "k", "v")
    await asyncio.sleep(0.1)  # committed and streamed before anyone waits
    status = await commit.status()
    assert status.block_number == ledger.committed[commit.transaction_id].number
    assert peer.calls.count("commit_status") == 1
    await gw.close()


async def test_a_broken_stream_resumes_after_its_last_block_and_misses_nothing(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer)
    peer.deliver_break_after = 3
    await _live(gw)
    contract = gw.network("ch").contract("testcc")
    for i in range(10):
        submitted = await contract.submit("Put", f"k{i}", "v")
        assert submitted.block_number == ledger.committed[submitted.transaction_id].number
    assert len(peer.seeks) >= 2
    assert peer.seeks[0].start.WhichOneof("Type") == "newest"
    # The stream broke after three blocks (5, 6, 7) and asked again from block 8.
    assert peer.seeks[1].start.specified.number == ledger.first_block + 3
    assert gw.client.counters["commit_status_from_blocks"] > 0
    await gw.close()


async def test_a_refused_stream_leaves_commit_status_to_do_the_work(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    peer.deliver_refuse = common_pb2.FORBIDDEN
    gw = _gateway(peer)
    contract = gw.network("ch").contract("testcc")
    for i in range(5):
        assert (await contract.submit("Put", f"k{i}", "v")).block_number == ledger.first_block + i
        await asyncio.sleep(0.01)
    assert peer.calls.count("deliver_filtered") == 1
    assert peer.calls.count("commit_status") == 5
    assert gw.client.commit_watcher("ch") is None
    await gw.close()


async def test_a_lost_transaction_is_resubmitted_when_the_stream_never_shows_it(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer, commit_attempt=0.05)
    await _live(gw)
    contract = gw.network("ch").contract("testcc")
    proposal = contract.new_proposal("Put", "k", "v")
    ledger.lose.add(proposal.transaction_id)
    commit = await (await proposal.endorse()).submit()
    status = await commit.status(timeout=5)
    assert status.successful
    assert [tx for tx, _ in ledger.submitted].count(proposal.transaction_id) == 2
    assert gw.client.counters["resubmit"] == 1
    await gw.close()


async def test_a_client_without_a_signer_opens_no_stream(peer: StreamingFakePeer) -> None:
    identity, key = make_identity()
    gw = Gateway(identity, [peer])
    contract = gw.network("ch").contract("testcc")
    proposal = contract.new_proposal("Put", "k", "v")
    endorsed = await proposal.with_signature(key.sign(proposal.digest())).endorse()
    commit = await endorsed.with_signature(key.sign(endorsed.digest())).submit()
    status = await commit.with_signature(key.sign(commit.digest())).status()
    assert status.successful
    assert "deliver_filtered" not in peer.calls
    await gw.close()


async def test_a_transaction_is_asked_about_by_id_later(
    peer: StreamingFakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer)
    network = gw.network("ch")
    commit = await network.contract("testcc").submit_async("Put", "k", "v")
    status = await network.commit(commit.transaction_id).status(timeout=5)
    assert (status.successful, status.block_number) == (True, ledger.first_block)
    await gw.close()


async def _watching(peer: StreamingFakePeer, recent: int) -> CommitWatcher:
    identity, key = make_identity()
    watcher = CommitWatcher(Failover([peer]), "ch", identity.serialize(), key, recent=recent)
    watcher.start()
    peer.ledger.commit("a", {}, None)
    for _ in range(200):
        if watcher.covers(asyncio.get_running_loop().time()):
            return watcher
        await asyncio.sleep(0.01)
    raise AssertionError("the filtered-block stream never went live")


async def test_statuses_no_longer_kept_are_not_covered(peer: StreamingFakePeer) -> None:
    watcher = await _watching(peer, recent=2)
    loop = asyncio.get_running_loop()
    before = loop.time()
    for tx in ("b", "c", "d"):
        peer.ledger.commit(tx, {}, None)
        await asyncio.sleep(0.02)
    assert (await watcher.wait("d", 1)) is not None
    # "a" and "b" were let go: a transaction submitted back then is left to CommitStatus.
    assert await watcher.wait("a", 0.05) is None
    assert not watcher.covers(before)
    assert watcher.covers(loop.time())
    await watcher.close()


async def test_a_duplicate_is_not_taken_for_a_status(peer: StreamingFakePeer) -> None:
    watcher = await _watching(peer, recent=100)
    first = await watcher.wait("a", 1)
    assert first is not None and first.code == transaction_pb2.VALID
    blocks = peer.ledger.blocks
    for tx in ("a", "never-seen-before"):
        blocks.append(Block(blocks[-1].number + 1, tx, transaction_pb2.DUPLICATE_TXID, None))
    peer.ledger.commit("z", {}, None)
    assert await watcher.wait("z", 1) is not None
    assert await watcher.wait("a", 0.05) == first
    assert await watcher.wait("never-seen-before", 0.05) is None
    await watcher.close()
