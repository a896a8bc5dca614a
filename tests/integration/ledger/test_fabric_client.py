"""The Fabric Gateway client against the real native network (marked ``fabric``).

Uses the session fixtures of tests/conftest.py: ``fabric_network`` (the
running network's profile), ``testcc`` (the test chaincode deployed as
"testcc") and ``enroll_identity`` (register and enrol a user, giving its MSP
folder).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import transaction_pb2

from gateway.identity.msp import load_msp
from gateway.ledger.connection import from_profile
from gateway.ledger.errors import EndorseError, EvaluateError
from gateway.ledger.events import FileCheckpointer
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.events import ChaincodeEvent
from network.profile import NetworkProfile
from tests.integration.ledger.peer_control import node_stopped, peer_stopped, raft_leader

pytestmark = pytest.mark.fabric

CHAINCODE = "testcc"


def _key() -> str:
    return f"fc-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def org1_gateway(fabric_network: NetworkProfile, testcc: Any) -> AsyncIterator[Gateway]:
    org = fabric_network.org("Org1")
    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org1")
    yield gw
    await gw.close()


def _endorsers(envelope: common_pb2.Envelope) -> set[str]:
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    return {
        identities_pb2.SerializedIdentity.FromString(e.endorser).mspid
        for e in action.action.endorsements
    }


async def test_evaluate_and_submit(org1_gateway: Gateway, fabric_network: NetworkProfile) -> None:
    contract = org1_gateway.network(fabric_network.channel).contract(CHAINCODE)
    key = _key()
    result = await contract.submit("Put", key, "hello")
    assert len(result.transaction_id) == 64
    assert await contract.evaluate("Get", key) == b"hello"


async def test_submit_endorsed_by_two_named_orgs(
    org1_gateway: Gateway, fabric_network: NetworkProfile
) -> None:
    contract = org1_gateway.network(fabric_network.channel).contract(CHAINCODE)
    proposal = contract.new_proposal("Put", _key(), "v", endorsing_orgs=["Org1MSP", "Org3MSP"])
    transaction = await proposal.endorse()
    assert _endorsers(transaction.envelope) == {"Org1MSP", "Org3MSP"}
    status = await (await transaction.submit()).status()
    assert status.successful


async def test_commit_status_gives_the_block_the_event_came_in(
    org1_gateway: Gateway, fabric_network: NetworkProfile
) -> None:
    network = org1_gateway.network(fabric_network.channel)
    contract = network.contract(CHAINCODE)
    before = await contract.submit("Put", _key(), "x")
    key = _key()
    commit = await contract.submit_async("PutWithEvent", key, "y")
    status = await commit.status()
    assert status.successful and status.code_name == "VALID"
    assert status.block_number > before.block_number
    async with network.chaincode_events(CHAINCODE, start_block=status.block_number) as stream:
        event = await asyncio.wait_for(stream.__anext__(), 10)
    assert event.transaction_id == commit.transaction_id
    assert event.block_number == status.block_number
    assert json.loads(event.payload) == {"key": key, "value": "y"}
    # Resuming after that transaction id alone (the peer finds its block) gives the next one.
    later = await contract.submit("PutWithEvent", key, "z")
    async with network.chaincode_events(
        CHAINCODE, after_transaction_id=commit.transaction_id
    ) as stream:
        event = await asyncio.wait_for(stream.__anext__(), 10)
    assert (event.transaction_id, event.block_number) == (
        later.transaction_id,
        later.block_number,
    )


async def test_commit_statuses_come_from_the_filtered_block_stream(
    fabric_network: NetworkProfile, testcc: Any
) -> None:
    org = fabric_network.org("Org1")
    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org1")
    plain = from_profile(fabric_network, org.admin_msp_dir, org="Org1", watch_commits=False)
    try:
        channel = fabric_network.channel
        contract = gw.network(channel).contract(CHAINCODE)
        await contract.submit("Put", _key(), "first")  # opens the stream
        watcher = gw.client.commit_watcher(channel)
        assert watcher is not None
        loop = asyncio.get_running_loop()
        for _ in range(100):
            if watcher.covers(loop.time()):
                break
            await asyncio.sleep(0.1)
        assert watcher.covers(loop.time()), watcher.disabled_reason or "stream never went live"
        submitted = await asyncio.gather(*(contract.submit("Put", _key(), "v") for _ in range(20)))
        assert gw.client.counters["commit_status_from_blocks"] == 20
        # Each answer is the one the peer's CommitStatus gives.
        for result in submitted:
            status = await plain.network(channel).commit(result.transaction_id).status(timeout=30)
            assert (status.code_name, status.block_number) == ("VALID", result.block_number)
        assert plain.client.counters["commit_status_calls"] == 20
    finally:
        await gw.close()
        await plain.close()


async def test_chaincode_error_is_an_endorse_error_with_its_message(
    org1_gateway: Gateway, fabric_network: NetworkProfile
) -> None:
    contract = org1_gateway.network(fabric_network.channel).contract(CHAINCODE)
    with pytest.raises(EndorseError) as caught:
        await contract.submit("Fail", "the asset is locked by Org2")
    err = caught.value
    assert err.chaincode_message is not None
    assert err.chaincode_message.endswith("the asset is locked by Org2")
    assert err.peer_details and all(d.msp_id.endswith("MSP") for d in err.peer_details)
    assert len(err.transaction_id) == 64


async def test_offline_signed_transaction_commits_as_that_member(
    fabric_network: NetworkProfile, testcc: Any, enroll_identity: Callable[..., Path]
) -> None:
    msp_dir = enroll_identity(fabric_network, "Org2", f"offline-{uuid.uuid4().hex[:8]}", "member")
    member = load_msp(msp_dir, "Org2MSP", require_key=True)
    member_signer = member.signer()  # stays with "the member"; the gateway never sees it

    gw = from_profile(fabric_network, msp_dir, org="Org2", offline=True)
    try:
        assert gw.client.signer is None
        contract = gw.network(fabric_network.channel).contract(CHAINCODE)
        proposal = contract.new_proposal("Put", _key(), "signed-by-member")
        # Carried as bytes to the member and back, as a relay would.
        signed = gw.new_signed_proposal(proposal.bytes(), member_signer.sign(proposal.digest()))
        transaction = await signed.endorse()
        transaction = gw.new_signed_transaction(
            transaction.bytes(), member_signer.sign(transaction.digest())
        )
        commit = await transaction.submit()
        commit = commit.with_signature(member_signer.sign(commit.digest()))
        status = await commit.status()
        assert status.successful

        # The ledger's copy of the transaction names the member as creator.
        qscc = gw.network(fabric_network.channel).contract("qscc")
        lookup = qscc.new_proposal(
            "GetTransactionByID", fabric_network.channel, commit.transaction_id
        )
        raw = await lookup.with_signature(member_signer.sign(lookup.digest())).evaluate()
        processed = transaction_pb2.ProcessedTransaction.FromString(raw)
        assert processed.validationCode == transaction_pb2.VALID
        payload = common_pb2.Payload.FromString(processed.transactionEnvelope.payload)
        header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        assert header.creator == member.identity.serialize()

        creator = contract.new_proposal("Creator")
        answer = json.loads(
            await creator.with_signature(member_signer.sign(creator.digest())).evaluate()
        )
        assert answer["msp_id"] == "Org2MSP"
        assert answer["fingerprint"] == member.identity.fingerprint
    finally:
        await gw.close()


async def _read(stream: Any, n: int, checkpointer: FileCheckpointer) -> list[ChaincodeEvent]:
    got: list[ChaincodeEvent] = []
    async for event in stream:
        got.append(event)
        checkpointer.checkpoint_event(event)
        if len(got) == n:
            break
    return got


async def test_events_resume_from_saved_checkpoint_without_miss_or_repeat(
    fabric_network: NetworkProfile, testcc: Any, tmp_path: Path
) -> None:
    org = fabric_network.org("Org1")
    channel = fabric_network.channel
    marker = _key()
    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org1")
    contract = gw.network(channel).contract(CHAINCODE)
    first = await contract.submit("Put", marker, "start")
    # Two transactions land in one block when submitted together: the checkpoint
    # must then resume in the middle of a block.
    batch1 = await asyncio.gather(
        *(contract.submit("PutWithEvent", f"{marker}-{i}", str(i)) for i in range(4))
    )
    checkpointer = FileCheckpointer(tmp_path / "events.json")
    stream = gw.network(channel).chaincode_events(
        CHAINCODE, start_block=first.block_number, checkpoint=checkpointer
    )
    seen = await asyncio.wait_for(_read(stream, 2, checkpointer), 20)
    await stream.aclose()
    await gw.close()  # "the process stops"

    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org1")
    try:
        contract = gw.network(channel).contract(CHAINCODE)
        batch2 = [await contract.submit("PutWithEvent", f"{marker}-{i}", str(i)) for i in (4, 5)]
        resumed = FileCheckpointer(tmp_path / "events.json")
        assert resumed.checkpoint is not None
        stream = gw.network(channel).chaincode_events(CHAINCODE, checkpoint=resumed)
        seen += await asyncio.wait_for(_read(stream, 4, resumed), 20)
        # Nothing more may come: a repeat would show up here.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 1.5)
        await stream.aclose()
    finally:
        await gw.close()

    ours = [e for e in seen if json.loads(e.payload)["key"].startswith(marker)]
    assert len(ours) == len(seen)
    expected = sorted((r.block_number, r.transaction_id) for r in batch1) + [
        (r.block_number, r.transaction_id) for r in batch2
    ]
    assert sorted((e.block_number, e.transaction_id) for e in seen) == sorted(expected)
    assert len({e.transaction_id for e in seen}) == 6


async def test_calls_fail_over_when_the_org1_peer_is_down(
    fabric_network: NetworkProfile, testcc: Any
) -> None:
    org = fabric_network.org("Org1")
    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org1")
    contract = gw.network(fabric_network.channel).contract(CHAINCODE)
    key = _key()
    first = await contract.submit("Put", key, "before")
    # Commit status came from Org1's peer; the others may be a block behind for a moment.
    for other in ("Org2MSP", "Org3MSP"):
        for _ in range(50):
            try:
                seen = await contract.evaluate("Get", key, target_orgs=[other])
            except EvaluateError:
                seen = b""
            if seen == b"before":
                break
            await asyncio.sleep(0.1)
    # An event stream open on the Org1 peer when it goes away.
    stream = gw.network(fabric_network.channel).chaincode_events(
        CHAINCODE, start_block=first.block_number
    )
    try:
        with peer_stopped(fabric_network, "Org1"):
            assert await contract.evaluate("Get", key, timeout=10) == b"before"
            result = await contract.submit("PutWithEvent", key, "during", timeout=30)
            assert result.block_number > 0
            assert await contract.evaluate("Get", key, timeout=10) == b"during"
            org1_transport = gw.client.failover.transports[0]
            assert org1_transport.endpoint == org.peer_address
            assert gw.client.failover.candidates()[0] is not org1_transport
            # The stream resumes on another peer and delivers what committed meanwhile.
            event = await asyncio.wait_for(stream.__anext__(), 20)
            assert (event.transaction_id, event.block_number) == (
                result.transaction_id,
                result.block_number,
            )
            # So does the filtered-block stream that answers commit statuses.
            watcher = gw.client.commit_watcher(fabric_network.channel)
            assert watcher is not None
            loop = asyncio.get_running_loop()
            for _ in range(100):
                if watcher.endpoint not in ("", org.peer_address) and watcher.covers(loop.time()):
                    break
                await asyncio.sleep(0.1)
            assert watcher.endpoint not in ("", org.peer_address)
            from_blocks = gw.client.counters["commit_status_from_blocks"]
            await contract.submit("Put", _key(), "via another peer", timeout=30)
            assert gw.client.counters["commit_status_from_blocks"] == from_blocks + 1
        # Back up: the Org1 peer answers again (endorsements may wait for gossip; the
        # client retries FAILED_PRECONDITION within the deadline).
        gw.client.failover.mark_up(gw.client.failover.transports[0])
        assert (await contract.submit("Put", key, "after", timeout=60)).block_number > 0
    finally:
        await stream.aclose()
        await gw.close()


@pytest.mark.chaos
async def test_submits_ride_out_the_raft_leader_being_killed(
    fabric_network: NetworkProfile, testcc: Any
) -> None:
    org = fabric_network.org("Org2")
    gw = from_profile(fabric_network, org.admin_msp_dir, org="Org2")
    contract = gw.network(fabric_network.channel).contract(CHAINCODE)
    marker = _key()
    written: dict[str, str] = {}
    slowest: list[float] = []
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(200):  # bounded, in count and (below) in time
            if stop.is_set():
                return
            key = f"{marker}-{w}-{i}"
            started = time.monotonic()
            await contract.submit("Put", key, str(i), timeout=60)
            slowest.append(time.monotonic() - started)
            written[key] = str(i)

    try:
        await contract.submit("Put", marker, "warm")
        leader, ops = raft_leader(fabric_network)
        # A steady stream of submits while the leader dies: transactions that reach
        # it at that moment are lost by the ordering service and must be resubmitted
        # (same id) until they commit.
        writers = [asyncio.create_task(writer(w)) for w in range(16)]
        await asyncio.sleep(0.5)
        with node_stopped(fabric_network, leader, ops, sig=signal.SIGKILL):
            await asyncio.sleep(3)
        await asyncio.sleep(1)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), 90)
        print(
            f"raft leader {leader} killed: {len(written)} committed, "
            f"slowest submit {max(slowest):.1f} s, {dict(gw.client.counters)}"
        )
        assert len(written) > 16
        for key in list(written)[:: max(1, len(written) // 25)]:
            assert await contract.evaluate("Get", key) == written[key].encode()
    finally:
        stop.set()
        await gw.close()
