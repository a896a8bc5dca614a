"""The ledger scenarios: the same assertions on the embedded ledger and on real Fabric.

Each test runs once per ledger (see conftest.py). Errors are checked by their
gRPC status and the peer's message, as the Fabric Gateway client reports them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from gateway.identity.msp import load_msp
from gateway.identity.signing import EcdsaSigner, sha256
from gateway.ledger.contract import Contract
from gateway.ledger.embedded.blocks import data_hash, header_hash
from gateway.ledger.errors import CommitError, EndorseError, EvaluateError
from gateway.ledger.events import Checkpointer
from gateway.ledger.protocol.events import Checkpoint, build_events_request
from gateway.ledger.protocol.proposal import build_proposal
from gateway.ledger.transport import RpcError, StatusCode

from .conftest import LedgerUnderTest

TIMEOUT = 30.0


def _contract(ledger: LedgerUnderTest, msp_dir: Path, org: str = "Org1"):  # type: ignore[no-untyped-def]
    gw = ledger.gateway(msp_dir, org)
    return gw, gw.network(ledger.channel).contract(ledger.chaincode)


async def _absent(contract, key: str) -> None:  # type: ignore[no-untyped-def]
    """The key holds no value (the test chaincode's Get refuses with not_found)."""
    with pytest.raises(EvaluateError) as info:
        await contract.evaluate("Get", key)
    assert "no value at key" in (info.value.chaincode_message or "")


# -- evaluate and submit -------------------------------------------------------------------


async def _read_on(contract: Contract, key: str, msp_id: str) -> bytes:
    """``Get`` on one org's peer. A commit status comes from one peer; another org's peer
    commits the same block a few milliseconds later, so its read may briefly miss."""
    for _ in range(50):
        try:
            return await contract.evaluate("Get", key, target_orgs=[msp_id])
        except EvaluateError as err:
            if "not_found" not in str(err):
                raise
        await asyncio.sleep(0.1)
    return await contract.evaluate("Get", key, target_orgs=[msp_id])


async def test_submit_then_evaluate_on_every_org(ledger: LedgerUnderTest) -> None:
    gw, contract = _contract(ledger, ledger.member())
    key = ledger.unique("k")
    result = await contract.submit("Put", key, "v1", timeout=TIMEOUT)
    assert result.block_number >= 1
    assert len(result.transaction_id) == 64
    for msp_id in ledger.msp_ids:
        assert await _read_on(contract, key, msp_id) == b"v1"
    creator = json.loads(await contract.evaluate("Creator"))
    assert creator == {"msp_id": "Org1MSP", "fingerprint": gw.identity.fingerprint}


async def test_increment_returns_its_result_through_submit(ledger: LedgerUnderTest) -> None:
    _, contract = _contract(ledger, ledger.member("Org2"), "Org2")
    key = ledger.unique("n")
    assert (await contract.submit("Increment", key, timeout=TIMEOUT)).result == b"1"
    assert (await contract.submit("Increment", key, timeout=TIMEOUT)).result == b"2"
    assert await contract.evaluate("Get", key) == b"2"


# -- endorsement policy --------------------------------------------------------------------


async def test_one_org_alone_is_refused_by_the_endorsement_policy(
    ledger: LedgerUnderTest,
) -> None:
    _, contract = _contract(ledger, ledger.member())
    key = ledger.unique("solo")
    commit = await contract.submit_async(
        "Put", key, "alone", endorsing_orgs=[ledger.msp_ids[0]], timeout=TIMEOUT
    )
    status = await commit.status(timeout=TIMEOUT)
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    with pytest.raises(CommitError):
        status.raise_for_status()
    await _absent(contract, key)
    # Two of three orgs is a majority: the same write then commits.
    result = await contract.submit(
        "Put", key, "pair", endorsing_orgs=list(ledger.msp_ids[:2]), timeout=TIMEOUT
    )
    assert result.block_number > status.block_number
    assert await contract.evaluate("Get", key) == b"pair"


# -- MVCC ----------------------------------------------------------------------------------


async def test_concurrent_read_modify_write_one_valid_one_mvcc_conflict(
    ledger: LedgerUnderTest,
) -> None:
    _, contract = _contract(ledger, ledger.member())
    key = ledger.unique("counter")
    await contract.submit("Put", key, "10", timeout=TIMEOUT)
    # Both simulate against the same committed version before either is ordered.
    first = await contract.new_proposal("Increment", key).endorse(timeout=TIMEOUT)
    second = await contract.new_proposal("Increment", key).endorse(timeout=TIMEOUT)
    assert first.result == second.result == b"11"
    commits = [await first.submit(timeout=TIMEOUT), await second.submit(timeout=TIMEOUT)]
    statuses = await asyncio.gather(*(c.status(timeout=TIMEOUT) for c in commits))
    # Fabric's orderers may order them either way round (a follower forwards to the leader).
    assert sorted(s.code_name for s in statuses) == ["MVCC_READ_CONFLICT", "VALID"]
    assert await contract.evaluate("Get", key) == b"11"


# -- chaincode events ----------------------------------------------------------------------


async def _take(stream, count: int) -> list:  # type: ignore[no-untyped-def]
    out = []
    async with asyncio.timeout(TIMEOUT):
        async for event in stream:
            out.append(event)
            if len(out) == count:
                break
    return out


async def test_events_resume_from_checkpoint_without_loss_or_repeat(
    ledger: LedgerUnderTest,
) -> None:
    gw, contract = _contract(ledger, ledger.member())
    network = gw.network(ledger.channel)
    keys = [ledger.unique(f"ev{i}") for i in range(4)]
    results = [
        await contract.submit("PutWithEvent", k, f"value-{i}", timeout=TIMEOUT)
        for i, k in enumerate(keys[:3])
    ]
    checkpointer = Checkpointer()
    stream = network.chaincode_events(ledger.chaincode, start_block=results[0].block_number)
    first = await _take(stream, 2)
    for event in first:
        checkpointer.checkpoint_event(event)
    await stream.aclose()
    results.append(await contract.submit("PutWithEvent", keys[3], "value-3", timeout=TIMEOUT))
    resumed = network.chaincode_events(ledger.chaincode, checkpoint=checkpointer)
    rest = await _take(resumed, 2)
    await resumed.aclose()
    events = first + rest
    assert [e.transaction_id for e in events] == [r.transaction_id for r in results]
    assert [e.block_number for e in events] == [r.block_number for r in results]
    assert [json.loads(e.payload)["key"] for e in events] == keys
    assert {e.event_name for e in events} == {"put"}
    assert {e.chaincode for e in events} == {ledger.chaincode}


async def test_peer_itself_resumes_after_the_checkpoint_transaction(
    ledger: LedgerUnderTest,
) -> None:
    """The peer, not only the client's filter, skips what the checkpoint covers."""
    msp_dir = ledger.member()
    _, contract = _contract(ledger, msp_dir)
    keys = [ledger.unique(f"raw{i}") for i in range(2)]
    results = [await contract.submit("PutWithEvent", k, "x", timeout=TIMEOUT) for k in keys]
    folder = load_msp(msp_dir, "Org1MSP", require_key=True)
    request = build_events_request(
        channel_id=ledger.channel,
        chaincode=ledger.chaincode,
        identity=folder.identity.serialize(),
        checkpoint=Checkpoint(results[0].block_number, results[0].transaction_id),
    )
    signed = gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=folder.signer().sign(sha256(request))
    )
    transport = ledger.transport("Org1MSP")
    stream = transport.chaincode_events(signed, timeout=TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        response = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert response.block_number == results[1].block_number
    assert [e.tx_id for e in response.events][:1] == [results[1].transaction_id]


# -- identities ----------------------------------------------------------------------------


def _access_denied(channel: str) -> str:
    """A Fabric peer's refusal of a creator whose certificate or signature is not valid."""
    return f"error validating proposal: access denied: channel [{channel}] creator org [Org1MSP]"


def _creator_unknown(channel: str) -> str:
    """A Fabric peer's refusal of a creator it cannot place in any channel MSP."""
    return (
        f"error validating proposal: access denied: channel [{channel}] creator org unknown, "
        "creator is malformed"
    )


async def test_unknown_identity_is_refused(ledger: LedgerUnderTest, foreign_identity: Path) -> None:
    _, contract = _contract(ledger, foreign_identity)
    with pytest.raises(EvaluateError) as evaluated:
        await contract.evaluate("Get", "anything")
    assert evaluated.value.status == "FAILED_PRECONDITION"
    assert _creator_unknown(ledger.channel) in str(evaluated.value)
    key = ledger.unique("foreign")
    with pytest.raises(EndorseError) as endorsed:
        await contract.submit("Put", key, "x", timeout=TIMEOUT)
    assert endorsed.value.status == "ABORTED"
    assert [d.message for d in endorsed.value.peer_details] == [_creator_unknown(ledger.channel)]
    _, own = _contract(ledger, ledger.member())
    await _absent(own, key)


async def test_revoked_identity_is_refused(ledger: LedgerUnderTest) -> None:
    name = ledger.unique("leaver")
    msp_dir = ledger.enroll("Org1", name, "member")
    _, contract = _contract(ledger, msp_dir)
    key = ledger.unique("before")
    await contract.submit("Put", key, "ok", timeout=TIMEOUT)
    ledger.revoke("Org1", name)
    with pytest.raises(EvaluateError) as evaluated:
        await contract.evaluate("Get", key)
    assert evaluated.value.status == "FAILED_PRECONDITION"
    assert _access_denied(ledger.channel) in str(evaluated.value)
    with pytest.raises(EndorseError):
        await contract.submit("Put", ledger.unique("after"), "no", timeout=TIMEOUT)


# -- chaincode errors ----------------------------------------------------------------------


async def test_chaincode_error_surfaces_with_its_message(ledger: LedgerUnderTest) -> None:
    _, contract = _contract(ledger, ledger.member())
    with pytest.raises(EvaluateError) as evaluated:
        await contract.evaluate("Fail", "the reason is 42")
    assert evaluated.value.status == "UNKNOWN"
    assert evaluated.value.chaincode_status == 500
    assert evaluated.value.chaincode_message == "bad_input: the reason is 42"
    with pytest.raises(EndorseError) as endorsed:
        await contract.submit("Fail", "refused at endorsement", timeout=TIMEOUT)
    assert endorsed.value.status == "ABORTED"
    assert endorsed.value.chaincode_message == "bad_input: refused at endorsement"


# -- bad input -----------------------------------------------------------------------------


def _height(ledger: LedgerUnderTest) -> int | None:
    return ledger.height() if ledger.height else None


async def test_malformed_protobuf_is_invalid_argument(ledger: LedgerUnderTest) -> None:
    transport = ledger.transport("Org1MSP")
    before = _height(ledger)
    garbage = proposal_pb2.SignedProposal(proposal_bytes=b"\x0a\xff\xff\xff", signature=b"sig")
    with pytest.raises(RpcError) as evaluated:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(channel_id=ledger.channel, proposed_transaction=garbage),
            timeout=TIMEOUT,
        )
    assert evaluated.value.status == StatusCode.INVALID_ARGUMENT
    assert evaluated.value.message.startswith(
        "failed to unpack transaction proposal: error unmarshalling Proposal"
    )
    with pytest.raises(RpcError) as endorsed:
        await transport.endorse(
            gateway_pb2.EndorseRequest(channel_id=ledger.channel, proposed_transaction=garbage),
            timeout=TIMEOUT,
        )
    assert endorsed.value.status == StatusCode.INVALID_ARGUMENT
    assert endorsed.value.message.startswith("error unmarshalling Proposal")
    with pytest.raises(RpcError) as status:
        await transport.commit_status(
            gateway_pb2.SignedCommitStatusRequest(request=b"\x0a\xff\xff", signature=b"x"),
            timeout=TIMEOUT,
        )
    assert status.value.status == StatusCode.INVALID_ARGUMENT
    assert status.value.message.startswith("invalid status request")
    assert _height(ledger) == before


def _proposal(ledger: LedgerUnderTest, msp_dir: Path, *args: str) -> tuple[bytes, str]:
    folder = load_msp(msp_dir, "Org1MSP", require_key=True)
    built = build_proposal(
        channel_id=ledger.channel,
        chaincode=ledger.chaincode,
        function=args[0],
        args=args[1:],
        creator=folder.identity.serialize(),
    )
    return built.proposal_bytes, built.transaction_id


async def test_proposal_signed_by_another_key_is_refused(ledger: LedgerUnderTest) -> None:
    transport = ledger.transport("Org1MSP")
    before = _height(ledger)
    key = ledger.unique("forged")
    proposal, tx_id = _proposal(ledger, ledger.member(), "Put", key, "forged")
    stranger = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=proposal, signature=stranger.sign(sha256(proposal))
    )
    with pytest.raises(RpcError) as evaluated:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(
                transaction_id=tx_id, channel_id=ledger.channel, proposed_transaction=signed
            ),
            timeout=TIMEOUT,
        )
    assert evaluated.value.status == StatusCode.FAILED_PRECONDITION
    assert evaluated.value.message == (
        f"evaluate call to endorser returned error: {_access_denied(ledger.channel)}"
    )
    with pytest.raises(RpcError) as endorsed:
        await transport.endorse(
            gateway_pb2.EndorseRequest(
                transaction_id=tx_id, channel_id=ledger.channel, proposed_transaction=signed
            ),
            timeout=TIMEOUT,
        )
    assert endorsed.value.status == StatusCode.ABORTED
    assert endorsed.value.message == (
        "failed to endorse transaction, see attached details for more info"
    )
    assert [d.message for d in endorsed.value.details] == [_access_denied(ledger.channel)]
    assert _height(ledger) == before
    _, contract = _contract(ledger, ledger.member())
    await _absent(contract, key)


def _rewrite_value(payload_bytes: bytes, new_value: bytes) -> bytes:
    """The envelope payload with the endorsed write's value replaced (all else kept)."""
    payload = common_pb2.Payload.FromString(payload_bytes)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        cap.action.proposal_response_payload
    )
    action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
    txrw = rwset_pb2.TxReadWriteSet.FromString(action.results)
    # Fabric also records a read of the chaincode definition (namespace _lifecycle).
    ns = next(n for n in txrw.ns_rwset if n.namespace == action.chaincode_id.name)
    kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
    kv.writes[0].value = new_value
    ns.rwset = kv.SerializeToString()
    action.results = txrw.SerializeToString()
    prp.extension = action.SerializeToString()
    cap.action.proposal_response_payload = prp.SerializeToString()
    tx.actions[0].payload = cap.SerializeToString()
    payload.data = tx.SerializeToString()
    return bytes(payload.SerializeToString())


async def test_envelope_tampered_after_signing_is_forbidden(ledger: LedgerUnderTest) -> None:
    gw, contract = _contract(ledger, ledger.member())
    key = ledger.unique("tamper")
    transaction = await contract.new_proposal("Put", key, "honest").endorse(timeout=TIMEOUT)
    signed = transaction.with_signature(
        gw.client.sign_digest(transaction.digest(), what="transaction")
    )
    before = _height(ledger)
    envelope = common_pb2.Envelope(
        payload=_rewrite_value(signed.envelope.payload, b"forged"),
        signature=signed.envelope.signature,
    )
    with pytest.raises(RpcError) as submitted:
        await ledger.transport("Org1MSP").submit(
            gateway_pb2.SubmitRequest(
                transaction_id=transaction.transaction_id,
                channel_id=ledger.channel,
                prepared_transaction=envelope,
            ),
            timeout=TIMEOUT,
        )
    assert submitted.value.status == StatusCode.ABORTED
    assert submitted.value.message == (
        "received unsuccessful response from orderer: status=FORBIDDEN, info=implicit policy "
        "evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the "
        "'Writers' sub-policies to be satisfied: permission denied"
    )
    await asyncio.sleep(0.3)
    assert _height(ledger) == before
    await _absent(contract, key)


async def test_endorsed_result_altered_by_its_creator_fails_validation(
    ledger: LedgerUnderTest,
) -> None:
    """The creator re-signs an altered write: ordered, but the endorsements no longer match."""
    gw, contract = _contract(ledger, ledger.member())
    key = ledger.unique("altered")
    transaction = await contract.new_proposal("Put", key, "endorsed").endorse(timeout=TIMEOUT)
    altered = _rewrite_value(transaction.envelope.payload, b"altered")
    signature = gw.client.sign_digest(sha256(altered), what="transaction")
    commit_tx = gw.new_signed_transaction(
        gateway_pb2.PreparedTransaction(
            transaction_id=transaction.transaction_id,
            envelope=common_pb2.Envelope(payload=altered),
        ).SerializeToString(),
        signature,
    )
    commit = await commit_tx.submit(timeout=TIMEOUT)
    status = await commit.status(timeout=TIMEOUT)
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    await _absent(contract, key)


async def test_oversized_argument_is_refused_by_the_chaincode(ledger: LedgerUnderTest) -> None:
    _, contract = _contract(ledger, ledger.member())
    before = _height(ledger)
    key = ledger.unique("big")
    big = "x" * (100 * 1024)
    with pytest.raises(EvaluateError) as evaluated:
        await contract.evaluate("Put", key, big)
    assert evaluated.value.status == "UNKNOWN"
    assert "is 102400 bytes; the limit is" in (evaluated.value.chaincode_message or "")
    with pytest.raises(EndorseError) as endorsed:
        await contract.submit("Put", key, big, timeout=TIMEOUT)
    assert "is 102400 bytes; the limit is" in (endorsed.value.chaincode_message or "")
    assert _height(ledger) == before
    await _absent(contract, key)


# -- blocks --------------------------------------------------------------------------------


async def test_blocks_are_hash_linked_the_fabric_way(ledger: LedgerUnderTest) -> None:
    """The embedded ledger's hashing, applied to Fabric's own blocks, finds the same links."""
    _, contract = _contract(ledger, ledger.member())
    result = await contract.submit("Put", ledger.unique("chain"), "x", timeout=TIMEOUT)
    await asyncio.sleep(0.5)  # a peer appends to its block file after it reports the commit
    blocks = ledger.blocks()
    assert len(blocks) > result.block_number
    assert [b.header.number for b in blocks] == list(range(len(blocks)))
    for previous, block in itertools.pairwise(blocks):
        assert bytes(block.header.previous_hash) == header_hash(previous.header)
        assert bytes(block.header.data_hash) == data_hash(list(block.data.data))
    committed = blocks[result.block_number]
    assert result.transaction_id in {_tx_id(raw) for raw in committed.data.data}
    codes = committed.metadata.metadata[common_pb2.TRANSACTIONS_FILTER]
    assert len(codes) == len(committed.data.data)


def _tx_id(raw: bytes) -> str:
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
    return str(common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id)


# -- replays -------------------------------------------------------------------------------


async def test_replayed_transaction_and_proposal_change_nothing(ledger: LedgerUnderTest) -> None:
    _, contract = _contract(ledger, ledger.member())
    key = ledger.unique("replay")
    proposal = contract.new_proposal("Increment", key)
    transaction = await proposal.endorse(timeout=TIMEOUT)
    commit = await transaction.submit(timeout=TIMEOUT)
    first = await commit.status(timeout=TIMEOUT)
    assert first.code_name == "VALID"
    # The same signed envelope again: ordered, but it cannot commit a second time.
    await ledger.transport("Org1MSP").submit(
        gateway_pb2.SubmitRequest(
            transaction_id=transaction.transaction_id,
            channel_id=ledger.channel,
            prepared_transaction=transaction.envelope,
        ),
        timeout=TIMEOUT,
    )
    await contract.submit("Put", ledger.unique("after-replay"), "x", timeout=TIMEOUT)
    again = await commit.status(timeout=TIMEOUT)
    assert (again.code_name, again.block_number) == ("VALID", first.block_number)
    assert await contract.evaluate("Get", key) == b"1"
    # The same signed proposal again is refused by the peer as a duplicate.
    with pytest.raises(EndorseError) as endorsed:
        await proposal.endorse(timeout=TIMEOUT)
    assert endorsed.value.status == "ABORTED"
    (detail,) = endorsed.value.peer_details
    assert detail.message.startswith(
        f"duplicate transaction found [{transaction.transaction_id}]. Creator ["
    )


async def test_events_from_newest_is_an_invalid_start_position(ledger: LedgerUnderTest) -> None:
    from fabric_protos.orderer import ab_pb2

    folder = load_msp(ledger.member(), "Org1MSP", require_key=True)
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=ledger.channel,
        chaincode_id=ledger.chaincode,
        identity=folder.identity.serialize(),
        start_position=ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest()),
    ).SerializeToString()
    signed = gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=folder.signer().sign(sha256(request))
    )
    stream = ledger.transport("Org1MSP").chaincode_events(signed, timeout=TIMEOUT)
    with pytest.raises(RpcError) as info:
        async with asyncio.timeout(TIMEOUT):
            await stream.__anext__()
    assert (info.value.status, info.value.message) == (
        StatusCode.INVALID_ARGUMENT,
        "invalid start position type: *orderer.SeekPosition_Newest",
    )


async def test_commit_status_request_signed_by_another_key_is_denied(
    ledger: LedgerUnderTest,
) -> None:
    from gateway.ledger.protocol.commit import build_commit_status_request

    folder = load_msp(ledger.member(), "Org1MSP", require_key=True)
    request = build_commit_status_request("0" * 64, ledger.channel, folder.identity.serialize())
    stranger = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(RpcError) as info:
        await ledger.transport("Org1MSP").commit_status(
            gateway_pb2.SignedCommitStatusRequest(
                request=request, signature=stranger.sign(sha256(request))
            ),
            timeout=TIMEOUT,
        )
    assert (info.value.status, info.value.message) == (
        StatusCode.PERMISSION_DENIED,
        "Failed evaluating policy on signed data during check policy on channel "
        f"[{ledger.channel}] with policy [/Channel/Application/Readers]: "
        "[signature set did not satisfy policy]",
    )


@pytest.mark.parametrize("where", ["chaincode", "channel"])
async def test_unknown_chaincode_or_channel(ledger: LedgerUnderTest, where: str) -> None:
    folder = load_msp(ledger.member(), "Org1MSP", require_key=True)
    channel = "nochannel" if where == "channel" else ledger.channel
    built = build_proposal(
        channel_id=channel,
        chaincode="nochaincode" if where == "chaincode" else ledger.chaincode,
        function="Get",
        args=["k"],
        creator=folder.identity.serialize(),
    )
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=built.proposal_bytes,
        signature=folder.signer().sign(sha256(built.proposal_bytes)),
    )
    with pytest.raises(RpcError) as info:
        await ledger.transport("Org1MSP").evaluate(
            gateway_pb2.EvaluateRequest(channel_id=channel, proposed_transaction=signed),
            timeout=TIMEOUT,
        )
    if where == "chaincode":
        assert (info.value.status, info.value.message) == (
            StatusCode.FAILED_PRECONDITION,
            f"no peers available to evaluate chaincode nochaincode in channel {ledger.channel}",
        )
    else:
        assert (info.value.status, info.value.message) == (
            StatusCode.UNAVAILABLE,
            "failed to get config for channel [nochannel]: could not get last config for "
            "channel nochannel",
        )


async def test_unknown_orgs_and_channels_in_requests(ledger: LedgerUnderTest) -> None:
    folder = load_msp(ledger.member(), "Org1MSP", require_key=True)
    built = build_proposal(
        channel_id=ledger.channel,
        chaincode=ledger.chaincode,
        function="Get",
        args=["k"],
        creator=folder.identity.serialize(),
    )
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=built.proposal_bytes,
        signature=folder.signer().sign(sha256(built.proposal_bytes)),
    )
    transport = ledger.transport("Org1MSP")
    with pytest.raises(RpcError) as endorsed:
        await transport.endorse(
            gateway_pb2.EndorseRequest(
                channel_id=ledger.channel,
                proposed_transaction=signed,
                endorsing_organizations=["Org9MSP"],
            ),
            timeout=TIMEOUT,
        )
    assert (endorsed.value.status, endorsed.value.message) == (
        StatusCode.UNAVAILABLE,
        "failed to find any endorsing peers for org(s): Org9MSP",
    )
    with pytest.raises(RpcError) as evaluated:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(
                channel_id=ledger.channel,
                proposed_transaction=signed,
                target_organizations=["Org9MSP"],
            ),
            timeout=TIMEOUT,
        )
    assert (evaluated.value.status, evaluated.value.message) == (
        StatusCode.FAILED_PRECONDITION,
        f"no peers available to evaluate chaincode {ledger.chaincode} in channel {ledger.channel}",
    )
    request = build_events_request(
        channel_id="nochannel",
        chaincode=ledger.chaincode,
        identity=folder.identity.serialize(),
        checkpoint=None,
    )
    stream = transport.chaincode_events(
        gateway_pb2.SignedChaincodeEventsRequest(
            request=request, signature=folder.signer().sign(sha256(request))
        ),
        timeout=TIMEOUT,
    )
    with pytest.raises(RpcError) as events:
        async with asyncio.timeout(TIMEOUT):
            await stream.__anext__()
    assert (events.value.status, events.value.message) == (
        StatusCode.PERMISSION_DENIED,
        "Failed to get policy manager for channel [nochannel]",
    )
