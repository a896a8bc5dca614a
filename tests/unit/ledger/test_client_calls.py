"""Gateway → Network → Contract against a fake peer: flows, retries, failover, errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from fabric_protos.peer import transaction_pb2

from gateway.identity.signing import sha256, verify
from gateway.ledger.client import Timeouts
from gateway.ledger.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    LedgerPermissionDenied,
    LedgerTimeout,
    LedgerUnavailable,
    SignatureRequired,
    SubmitError,
)
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.proposal import parse_signed_proposal
from gateway.ledger.transport import PeerErrorDetail, RpcError, StatusCode
from tests.unit.ledger.ledger_fakes import FakeLedger, FakePeer, make_identity


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def peer(ledger: FakeLedger) -> FakePeer:
    return FakePeer(ledger)


def _gateway(*peers: FakePeer, signer: bool = True, **timeouts: float) -> Gateway:
    identity, key = make_identity()
    return Gateway(
        identity, list(peers), signer=key if signer else None, timeouts=Timeouts(**timeouts)
    )


async def test_submit_then_evaluate_returns_result_id_and_block(peer: FakePeer) -> None:
    gw = _gateway(peer)
    contract = gw.network("ch").contract("testcc")
    submitted = await contract.submit("Put", "k1", "v1")
    assert submitted.block_number == 5
    assert len(submitted.transaction_id) == 64
    assert await contract.evaluate("Get", "k1") == b"v1"
    assert peer.calls == ["endorse", "submit", "commit_status", "evaluate"]
    await gw.close()
    assert peer.closed


async def test_evaluate_request_is_signed_by_the_identity_and_targets_orgs(peer: FakePeer) -> None:
    identity, key = make_identity()
    gw = Gateway(identity, [peer], signer=key)
    await gw.network("ch").contract("testcc").evaluate("Get", "x", target_orgs=["Org2MSP"])
    request = peer.evaluate_requests[0]
    info = parse_signed_proposal(request.proposed_transaction)
    assert info.creator == identity.serialize()
    assert verify(identity.public_key, info.proposal_bytes, info.signature)
    assert list(request.target_organizations) == ["Org2MSP"]
    assert request.transaction_id == info.transaction_id


async def test_endorsing_orgs_are_sent(peer: FakePeer) -> None:
    gw = _gateway(peer)
    await (
        gw.network("ch")
        .contract("testcc")
        .submit("Put", "k", "v", endorsing_orgs=["Org1MSP", "Org2MSP"])
    )
    assert list(peer.endorse_requests[0].endorsing_organizations) == ["Org1MSP", "Org2MSP"]


async def test_submit_async_returns_before_commit_with_a_handle(peer: FakePeer) -> None:
    gw = _gateway(peer)
    commit = await gw.network("ch").contract("testcc").submit_async("Put", "a", "1")
    assert peer.calls == ["endorse", "submit"]
    status = await commit.status()
    assert status.successful and status.code_name == "VALID"
    assert status.transaction_id == commit.transaction_id


async def test_chaincode_error_on_endorse_carries_its_message_and_each_peer(
    peer: FakePeer,
) -> None:
    gw = _gateway(peer)
    with pytest.raises(EndorseError) as caught:
        await gw.network("ch").contract("testcc").submit("Fail", "asset 7 is locked")
    err = caught.value
    assert err.chaincode_message == "asset 7 is locked"
    assert err.chaincode_status == 500
    assert {d.msp_id for d in err.peer_details} == {"Org1MSP", "Org2MSP"}
    assert err.transaction_id and len(err.transaction_id) == 64
    assert err.code == "AL1302"
    assert "asset 7 is locked" in err.message


async def test_chaincode_error_on_evaluate(peer: FakePeer) -> None:
    gw = _gateway(peer)
    with pytest.raises(EvaluateError) as caught:
        await gw.network("ch").contract("testcc").evaluate("Fail", "nope")
    assert caught.value.chaincode_message == "nope"
    assert caught.value.status == "UNKNOWN"


async def test_invalid_commit_raises_commit_error_with_code_name(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    ledger.next_code = transaction_pb2.MVCC_READ_CONFLICT
    gw = _gateway(peer)
    with pytest.raises(CommitError) as caught:
        await gw.network("ch").contract("testcc").submit("Put", "k", "v")
    assert caught.value.validation_code_name == "MVCC_READ_CONFLICT"
    assert caught.value.block_number == 5
    assert caught.value.transaction_id == ledger.blocks[0].tx_id


async def test_endorse_retries_failed_precondition_within_deadline(peer: FakePeer) -> None:
    gossip = RpcError(StatusCode.FAILED_PRECONDITION, "no combination of peers can be derived")
    peer.fail["endorse"] = [gossip, gossip]
    gw = _gateway(peer)
    result = await gw.network("ch").contract("testcc").submit("Put", "k", "v")
    assert result.block_number == 5
    assert peer.calls.count("endorse") == 3


async def test_endorse_failed_precondition_gives_up_at_the_deadline(peer: FakePeer) -> None:
    peer.fail["endorse"] = [
        RpcError(StatusCode.FAILED_PRECONDITION, "no combination of peers") for _ in range(50)
    ]
    gw = _gateway(peer)
    with pytest.raises(EndorseError) as caught:
        await gw.network("ch").contract("testcc").submit("Put", "k", "v", timeout=0.5)
    assert caught.value.status == "FAILED_PRECONDITION"
    assert 2 <= peer.calls.count("endorse") <= 6


async def test_lost_transaction_is_resubmitted_with_same_id_and_signature(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer, commit_attempt=0.05)
    contract = gw.network("ch").contract("testcc")
    proposal = contract.new_proposal("Put", "k", "v")
    ledger.lose.add(proposal.transaction_id)
    transaction = await proposal.endorse()
    commit = await transaction.submit()
    status = await commit.status()
    assert status.successful
    assert [s[0] for s in ledger.submitted] == [proposal.transaction_id] * 2
    assert ledger.submitted[0][1] == ledger.submitted[1][1]  # the same signed envelope
    assert peer.calls.count("commit_status") == 2


async def test_slow_transaction_is_not_resubmitted_while_others_keep_order(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer, commit_attempt=0.1)
    contract = gw.network("ch").contract("testcc")
    # A busy network: transactions submitted before ours keep committing, in order...
    earlier = []
    for i in range(10):
        proposal = contract.new_proposal("Put", f"e{i}", "x")
        ledger.slow[proposal.transaction_id] = 0.04 * (i + 1)
        earlier.append(await (await proposal.endorse()).submit())
    # ...and ours, merely queued behind them, commits after several attempts' time.
    proposal = contract.new_proposal("Put", "k", "v")
    ledger.slow[proposal.transaction_id] = 0.45
    commit = await (await proposal.endorse()).submit()
    statuses = await asyncio.gather(*(c.status(timeout=5) for c in [*earlier, commit]))
    assert all(s.successful for s in statuses)
    assert [tx for tx, _ in ledger.submitted].count(proposal.transaction_id) == 1
    assert peer.calls.count("commit_status") >= 11 + 3  # ours took 4+ attempts


async def test_overtaken_transaction_is_resubmitted(peer: FakePeer, ledger: FakeLedger) -> None:
    gw = _gateway(peer, commit_attempt=0.1, overtaken_after=0.05)
    contract = gw.network("ch").contract("testcc")
    await contract.submit("Put", "a", "1")
    proposal = contract.new_proposal("Put", "k", "v")
    ledger.lose.add(proposal.transaction_id)
    lost = await (await proposal.endorse()).submit()
    waiting = asyncio.create_task(lost.status(timeout=5))
    await asyncio.sleep(0.07)
    await contract.submit("Put", "b", "2")  # submitted later, committed first
    assert (await waiting).successful
    assert [tx for tx, _ in ledger.submitted].count(proposal.transaction_id) == 2


async def test_commit_status_without_an_answer_times_out_instead_of_hanging(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer, commit_attempt=0.05)
    commit = await gw.network("ch").contract("testcc").submit_async("Put", "k", "v")
    del ledger.committed[commit.transaction_id]  # as if the peer never hears of it again
    ledger.drop_all = True
    with pytest.raises(LedgerTimeout) as caught:
        await commit.status(timeout=0.3)
    assert caught.value.transaction_id == commit.transaction_id
    assert len(ledger.submitted) >= 3  # resubmitted while waiting


async def test_definite_rejection_on_resubmit_stops_waiting(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    gw = _gateway(peer, commit_attempt=0.05)
    contract = gw.network("ch").contract("testcc")
    proposal = contract.new_proposal("Put", "k", "v")
    ledger.lose.add(proposal.transaction_id)
    commit = await (await proposal.endorse()).submit()
    peer.fail["submit"] = [
        RpcError(
            StatusCode.ABORTED,
            "received unsuccessful response from orderer: status=BAD_REQUEST, info=bad",
        )
    ]
    with pytest.raises(SubmitError) as caught:
        await commit.status(timeout=5)
    assert caught.value.transaction_id == proposal.transaction_id


async def test_submit_waits_out_a_raft_election(peer: FakePeer) -> None:
    no_leader = RpcError(
        StatusCode.ABORTED,
        "received unsuccessful response from orderer: status=SERVICE_UNAVAILABLE, info=no leader",
    )
    peer.fail["submit"] = [no_leader]
    gw = _gateway(peer)
    assert (await gw.network("ch").contract("testcc").submit("Put", "k", "v")).block_number == 5


async def test_failover_to_next_peer_when_first_is_down(ledger: FakeLedger) -> None:
    org1 = FakePeer(ledger, "peer0.org1:7051", "Org1MSP")
    org2 = FakePeer(ledger, "peer0.org2:9051", "Org2MSP")
    org1.down = True
    gw = _gateway(org1, org2)
    contract = gw.network("ch").contract("testcc")
    await contract.submit("Put", "k", "v")
    assert await contract.evaluate("Get", "k") == b"v"
    # The down peer was tried once, then set aside during its cool-down.
    assert org1.calls == ["endorse"]
    assert org2.calls == ["endorse", "submit", "commit_status", "evaluate"]


async def test_all_peers_down_is_unavailable_with_transaction_id(ledger: FakeLedger) -> None:
    org1, org2 = FakePeer(ledger), FakePeer(ledger, "peer0.org2:9051", "Org2MSP")
    org1.down = org2.down = True
    gw = _gateway(org1, org2)
    proposal = gw.network("ch").contract("testcc").new_proposal("Get", "k")
    with pytest.raises(LedgerUnavailable) as caught:
        await proposal.evaluate()
    assert caught.value.transaction_id == proposal.transaction_id
    assert caught.value.code == "AL1307"


async def test_wrong_signature_surfaces_as_permission_denied(peer: FakePeer) -> None:
    gw = _gateway(peer, signer=False)
    proposal = gw.network("ch").contract("testcc").new_proposal("Get", "k")
    _, other_key = make_identity()
    with pytest.raises(LedgerPermissionDenied):
        await proposal.with_signature(other_key.sign(proposal.digest())).evaluate()


async def test_no_signer_requires_offline_signature(peer: FakePeer) -> None:
    gw = _gateway(peer, signer=False)
    with pytest.raises(SignatureRequired):
        await gw.network("ch").contract("testcc").evaluate("Get", "k")


async def test_offline_signing_end_to_end_key_never_given_to_gateway(
    peer: FakePeer, ledger: FakeLedger
) -> None:
    identity, member_key = make_identity("Org2MSP", "bob")
    gw = Gateway(identity, [peer])  # no signer
    proposal = gw.network("ch").contract("testcc").new_proposal("PutWithEvent", "k", "v")
    # The proposal travels as bytes to the member, who signs its digest.
    carried = gw.new_signed_proposal(proposal.bytes(), member_key.sign(proposal.digest()))
    assert carried.transaction_id == proposal.transaction_id
    transaction = await carried.endorse()
    assert transaction.digest() == sha256(transaction.envelope.payload)
    signed_tx = gw.new_signed_transaction(
        transaction.bytes(), member_key.sign(transaction.digest())
    )
    commit = await signed_tx.submit()
    commit = gw.new_signed_commit(commit.bytes(), member_key.sign(commit.digest()))
    status = await commit.status()
    assert status.successful
    assert ledger.state["k"] == b"v"
    assert json.loads(ledger.blocks[0].event.payload) == {"key": "k", "value": "v"}


async def test_unknown_grpc_status_maps_to_stage_error_with_peer_messages(peer: FakePeer) -> None:
    peer.fail["submit"] = [
        RpcError(
            StatusCode.INVALID_ARGUMENT,
            "prepared transaction must be signed",
            (PeerErrorDetail("orderer1:7050", "OrdererMSP", "bad"),),
        )
    ]
    gw = _gateway(peer)
    with pytest.raises(SubmitError) as caught:
        await gw.network("ch").contract("testcc").submit("Put", "k", "v")
    assert caught.value.status == "INVALID_ARGUMENT"
    assert "OrdererMSP orderer1:7050: bad" in caught.value.message
    assert caught.value.to_dict()["details"]["peers"][0]["msp_id"] == "OrdererMSP"


async def test_spread_shares_calls_between_peers_and_still_fails_over(
    ledger: FakeLedger,
) -> None:
    peers = [FakePeer(ledger, f"peer0.org{n}:7051", f"Org{n}MSP") for n in (1, 2, 3)]
    identity, key = make_identity()
    gw = Gateway(identity, peers, signer=key, spread=True)
    contract = gw.network("ch").contract("testcc")
    for _ in range(6):
        await contract.evaluate("Get", "k")
    assert [p.calls.count("evaluate") for p in peers] == [2, 2, 2]
    peers[1].down = True
    for _ in range(6):
        await contract.evaluate("Get", "k")
    assert peers[1].calls.count("evaluate") == 3  # tried once more, then set aside
    assert sum(p.calls.count("evaluate") for p in peers) == 13


async def test_commit_status_asks_again_after_a_reset_stream(peer: FakePeer) -> None:
    peer.fail["commit_status"] = [
        RpcError(StatusCode.UNKNOWN, "Stream removed (RST_STREAM with error code 8)")
    ]
    gw = _gateway(peer)
    result = await gw.network("ch").contract("testcc").submit("Put", "k", "v")
    assert result.block_number == 5
    assert peer.calls.count("commit_status") == 2
    assert gw.client.counters["commit_status_retry"] == 1


async def test_commit_status_refusal_is_not_retried(peer: FakePeer) -> None:
    peer.fail["commit_status"] = [RpcError(StatusCode.ABORTED, "ledger failure")]
    gw = _gateway(peer)
    with pytest.raises(CommitStatusError):
        await gw.network("ch").contract("testcc").submit("Put", "k", "v")
    assert peer.calls.count("commit_status") == 1
