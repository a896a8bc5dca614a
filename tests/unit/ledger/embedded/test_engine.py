"""The embedded ledger engine through the Fabric client and raw Gateway requests."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2

from gateway.config import load_settings
from gateway.identity.certificates import load_certificate
from gateway.identity.msp import load_msp
from gateway.identity.signing import sha256, verify
from gateway.ledger.embedded import (
    EmbeddedConfig,
    EmbeddedLedger,
    EmbeddedTransport,
    config_from_settings,
)
from gateway.ledger.embedded.blocks import header_bytes
from gateway.ledger.embedded.errors import EmbeddedConfigError, LedgerInUse
from gateway.ledger.embedded_client import embedded_gateway
from gateway.ledger.errors import EndorseError, EvaluateError, LedgerTimeout
from gateway.ledger.protocol.commit import build_commit_status_request
from gateway.ledger.protocol.events import Checkpoint, build_events_request
from gateway.ledger.protocol.proposal import build_proposal
from gateway.ledger.transport import RpcError, StatusCode

from .kv_contract import CONTRACTS

CHANNEL = "anchorline"


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    led = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, batch_timeout_s=0.01)
    )
    yield led
    await led.close()


@pytest.fixture
def member(ledger: EmbeddedLedger) -> Path:
    return ledger.ca.enroll("Org1", "alice", "member")


@pytest.fixture
async def contract(ledger: EmbeddedLedger, member: Path):  # type: ignore[no-untyped-def]
    gw = embedded_gateway(ledger, member, org="Org1")
    yield gw.network(CHANNEL).contract("kv")
    await gw.close()


def _signed_proposal(member: Path, *args: str, chaincode: str = "kv", channel: str = CHANNEL):  # type: ignore[no-untyped-def]
    folder = load_msp(member, "Org1MSP", require_key=True)
    built = build_proposal(
        channel_id=channel,
        chaincode=chaincode,
        function=args[0],
        args=args[1:],
        creator=folder.identity.serialize(),
    )
    signature = folder.signer().sign(sha256(built.proposal_bytes))
    return built, proposal_pb2.SignedProposal(
        proposal_bytes=built.proposal_bytes, signature=signature
    )


# -- blocks --------------------------------------------------------------------------------


async def test_genesis_and_committed_blocks_are_real_signed_fabric_blocks(
    ledger: EmbeddedLedger, contract
) -> None:  # type: ignore[no-untyped-def]
    genesis = ledger.store.block(0)
    assert genesis is not None
    envelope = common_pb2.Envelope.FromString(genesis.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    assert common_pb2.ChannelHeader.FromString(payload.header.channel_header).type == (
        common_pb2.CONFIG
    )
    result = await contract.submit("Put", "a", "1")
    block = ledger.store.block(result.block_number)
    assert block is not None
    assert len(block.metadata.metadata) == 5
    assert block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes([0])
    signatures = common_pb2.Metadata.FromString(block.metadata.metadata[common_pb2.SIGNATURES])
    (sig,) = signatures.signatures
    orderer = load_msp(
        ledger.ca.identity_dir("Orderer", "orderer0"), "OrdererMSP", require_key=False
    )
    signed = signatures.value + sig.signature_header + header_bytes(block.header)
    assert verify(orderer.identity.public_key, signed, sig.signature)
    assert ledger.store.verify_chain() == ledger.height


async def test_reopening_continues_the_height(tmp_path: Path) -> None:
    config = EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS})
    first = EmbeddedLedger.open(config)
    msp = first.ca.enroll("Org1", "alice", "member")
    async with embedded_gateway(first, msp, org="Org1") as gw:
        r1 = await gw.network(CHANNEL).contract("kv").submit("Put", "a", "1")
    await first.close()
    second = EmbeddedLedger.open(config)
    try:
        assert second.height == r1.block_number + 1
        async with embedded_gateway(second, msp, org="Org1") as gw:
            c = gw.network(CHANNEL).contract("kv")
            assert await c.evaluate("Get", "a") == b"1"
            r2 = await c.submit("Put", "a", "2")
        assert r2.block_number == r1.block_number + 1
    finally:
        await second.close()


async def test_a_second_process_cannot_open_the_same_folder(ledger: EmbeddedLedger) -> None:
    with pytest.raises(LedgerInUse, match="in use by pid"):
        EmbeddedLedger.open(ledger.config)


async def test_batching_cuts_blocks_by_size(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(
        EmbeddedConfig(
            root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, batch_max_tx=3, batch_timeout_s=5
        )
    )
    try:
        msp = led.ca.enroll("Org1", "alice", "member")
        async with embedded_gateway(led, msp, org="Org1") as gw:
            c = gw.network(CHANNEL).contract("kv")
            results = await asyncio.wait_for(
                asyncio.gather(*(c.submit("Put", f"k{i}", "v") for i in range(6))), 4
            )
        blocks = sorted({r.block_number for r in results})
        assert blocks == [1, 2]
        assert [len(led.store.block(b).data.data) for b in blocks] == [3, 3]  # type: ignore[union-attr]
    finally:
        await led.close()


# -- simulation semantics ------------------------------------------------------------------


async def test_reads_do_not_see_own_writes(contract) -> None:  # type: ignore[no-untyped-def]
    await contract.submit("Put", "k", "old")
    # As in Fabric, a transaction reads committed state, not its own pending write.
    result = await contract.submit("PutThenGet", "k", "new")
    assert result.result == b"old"
    assert await contract.evaluate("Get", "k") == b"new"


async def test_composite_keys_and_range_scans(contract) -> None:  # type: ignore[no-untyped-def]
    for item, value in [("b", "2"), ("a", "1"), ("c", "3")]:
        await contract.submit("PutItem", "fruit", item, value)
    await contract.submit("PutItem", "veg", "z", "9")
    await contract.submit("Put", "plain1", "x")
    await contract.submit("Put", "plain2", "y")
    assert json.loads(await contract.evaluate("Scan", "fruit")) == [
        ["a", "1"],
        ["b", "2"],
        ["c", "3"],
    ]
    # An empty start key skips composite keys, as Fabric's shim does.
    assert json.loads(await contract.evaluate("Range", "", "")) == ["plain1", "plain2"]
    assert json.loads(await contract.evaluate("Range", "plain1", "plain2")) == ["plain1"]


async def test_paginated_range(contract) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        await contract.submit("Put", f"p{i}", "x")
    page1 = json.loads(await contract.evaluate("Page", "p", "q", "2", ""))
    assert page1 == {"keys": ["p0", "p1"], "bookmark": "p2"}
    page2 = json.loads(await contract.evaluate("Page", "p", "q", "2", page1["bookmark"]))
    assert page2 == {"keys": ["p2", "p3"], "bookmark": "p4"}
    page3 = json.loads(await contract.evaluate("Page", "p", "q", "2", page2["bookmark"]))
    assert page3 == {"keys": ["p4"], "bookmark": ""}


async def test_writes_after_a_paginated_query_are_refused(contract) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EndorseError) as info:
        await contract.submit("PutThenPage", "k")
    assert "internal: kv:PutThenPage failed" in (info.value.chaincode_message or "")


async def test_rich_queries_answer_like_a_leveldb_peer(contract) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EvaluateError) as info:
        await contract.evaluate("RichQuery")
    assert info.value.chaincode_status == 500


async def test_transaction_facts_reach_the_contract(contract, member: Path) -> None:  # type: ignore[no-untyped-def]
    proposal = contract.new_proposal("Facts", transient={"secret": b"s"})
    facts = json.loads(await proposal.evaluate())
    assert facts["tx_id"] == proposal.transaction_id
    assert facts["channel"] == CHANNEL
    assert facts["msp_id"] == "Org1MSP"
    assert facts["role"] == "member"
    assert facts["transient"] == ["secret"]
    assert facts["time"].endswith("Z")


async def test_deleted_key_is_gone(contract) -> None:  # type: ignore[no-untyped-def]
    await contract.submit("Put", "d", "1")
    await contract.submit("Delete", "d")
    assert await contract.evaluate("Get", "d") == b""


# -- validation ----------------------------------------------------------------------------


async def test_phantom_read_conflict(contract) -> None:  # type: ignore[no-untyped-def]
    await contract.submit("PutItem", "box", "a", "1")
    counting = await contract.new_proposal("CountItems", "box").endorse()
    inserting = await contract.new_proposal("PutItem", "box", "b", "2").endorse()
    insert_commit = await inserting.submit()
    assert (await insert_commit.status()).code_name == "VALID"
    count_commit = await counting.submit()
    assert (await count_commit.status()).code_name == "PHANTOM_READ_CONFLICT"


async def test_same_signed_transaction_twice_is_a_duplicate(
    ledger: EmbeddedLedger, contract
) -> None:  # type: ignore[no-untyped-def]
    transaction = await contract.new_proposal("Put", "dup", "1").endorse()
    first = await transaction.submit()
    request = gateway_pb2.SubmitRequest(
        transaction_id=transaction.transaction_id,
        channel_id=CHANNEL,
        prepared_transaction=transaction.envelope,
    )
    assert (await first.status()).code_name == "VALID"
    height = ledger.height
    await EmbeddedTransport(ledger, "Org1MSP").submit(request, timeout=5)
    await ledger.flush()
    block = ledger.store.block(height)
    assert block is not None
    assert block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes(
        [transaction_pb2.TxValidationCode.DUPLICATE_TXID]
    )
    # The first entry keeps counting: its status is still VALID in its own block.
    status = await first.status()
    assert status.code_name == "VALID" and status.block_number < height


async def test_endorsing_an_already_committed_id_is_refused(
    ledger: EmbeddedLedger, member: Path, contract
) -> None:  # type: ignore[no-untyped-def]
    built, signed = _signed_proposal(member, "Put", "x", "1")
    transport = EmbeddedTransport(ledger, "Org1MSP")
    endorsed = await transport.endorse(
        gateway_pb2.EndorseRequest(
            transaction_id=built.transaction_id, channel_id=CHANNEL, proposed_transaction=signed
        ),
        timeout=5,
    )
    envelope = endorsed.prepared_transaction
    folder = load_msp(member, "Org1MSP", require_key=True)
    envelope.signature = folder.signer().sign(sha256(envelope.payload))
    await transport.submit(
        gateway_pb2.SubmitRequest(
            transaction_id=built.transaction_id, channel_id=CHANNEL, prepared_transaction=envelope
        ),
        timeout=5,
    )
    await ledger.flush()
    with pytest.raises(RpcError) as info:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(channel_id=CHANNEL, proposed_transaction=signed),
            timeout=5,
        )
    assert info.value.status == StatusCode.FAILED_PRECONDITION
    assert f"duplicate transaction found [{built.transaction_id}]" in info.value.message


async def test_policy_any_and_all(tmp_path: Path) -> None:
    for policy, solo_code in (("ANY", "VALID"), ("ALL", "ENDORSEMENT_POLICY_FAILURE")):
        led = EmbeddedLedger.open(
            EmbeddedConfig(root=tmp_path / policy, chaincodes={"kv": CONTRACTS}, policy=policy)  # type: ignore[arg-type]
        )
        try:
            msp = led.ca.enroll("Org1", "alice", "member")
            async with embedded_gateway(led, msp, org="Org1") as gw:
                c = gw.network(CHANNEL).contract("kv")
                commit = await c.submit_async("Put", "k", "v", endorsing_orgs=["Org2MSP"])
                assert (await commit.status()).code_name == solo_code
                # Without a choice of orgs the gateway gathers what the policy needs.
                assert (await c.submit("Put", "k2", "v")).block_number > 0
        finally:
            await led.close()


# -- requests a peer refuses ---------------------------------------------------------------


async def test_oversized_request_is_resource_exhausted(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, max_recv_bytes=4096)
    )
    try:
        msp = led.ca.enroll("Org1", "alice", "member")
        _built, signed = _signed_proposal(msp, "Put", "k", "x" * 5000)
        with pytest.raises(RpcError) as info:
            await EmbeddedTransport(led, "Org1MSP").endorse(
                gateway_pb2.EndorseRequest(channel_id=CHANNEL, proposed_transaction=signed),
                timeout=5,
            )
        assert info.value.status == StatusCode.RESOURCE_EXHAUSTED
        assert info.value.message.startswith("grpc: received message larger than max (")
        assert info.value.message.endswith(" vs. 4096)")
        assert led.height == 1
    finally:
        await led.close()


async def test_oversized_envelope_is_refused_by_the_orderer(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, absolute_max_bytes=3000)
    )
    try:
        msp = led.ca.enroll("Org1", "alice", "member")
        async with embedded_gateway(led, msp, org="Org1") as gw:
            with pytest.raises(Exception) as info:
                await gw.network(CHANNEL).contract("kv").submit("Put", "k", "y" * 2000)
        assert "status=BAD_REQUEST, info=message payload is" in str(info.value)
        assert "exceeds maximum allowed 3000 bytes" in str(info.value)
        assert led.height == 1
    finally:
        await led.close()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("evaluate", "failed to unpack transaction proposal: a signed proposal is required"),
        ("endorse", "the proposed transaction must contain a signed proposal"),
    ],
)
async def test_empty_proposal(ledger: EmbeddedLedger, call: str, expected: str) -> None:
    transport = EmbeddedTransport(ledger, "Org1MSP")
    request_type = gateway_pb2.EvaluateRequest if call == "evaluate" else gateway_pb2.EndorseRequest
    with pytest.raises(RpcError) as info:
        await getattr(transport, call)(request_type(channel_id=CHANNEL), timeout=5)
    assert (info.value.status, info.value.message) == (StatusCode.INVALID_ARGUMENT, expected)


async def test_submit_without_signature_or_transaction(ledger: EmbeddedLedger) -> None:
    transport = EmbeddedTransport(ledger, "Org1MSP")
    with pytest.raises(RpcError) as missing:
        await transport.submit(gateway_pb2.SubmitRequest(channel_id=CHANNEL), timeout=5)
    assert missing.value.message == "a prepared transaction is required"
    with pytest.raises(RpcError) as unsigned:
        await transport.submit(
            gateway_pb2.SubmitRequest(
                channel_id=CHANNEL, prepared_transaction=common_pb2.Envelope(payload=b"x")
            ),
            timeout=5,
        )
    assert (unsigned.value.status, unsigned.value.message) == (
        StatusCode.INVALID_ARGUMENT,
        "prepared transaction must be signed",
    )


async def test_unknown_chaincode_and_channel(ledger: EmbeddedLedger, member: Path) -> None:
    transport = EmbeddedTransport(ledger, "Org1MSP")
    _, signed = _signed_proposal(member, "Get", "k", chaincode="nope")
    with pytest.raises(RpcError) as info:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(channel_id=CHANNEL, proposed_transaction=signed),
            timeout=5,
        )
    assert info.value.status == StatusCode.FAILED_PRECONDITION
    assert (
        info.value.message == "no peers available to evaluate chaincode nope in channel anchorline"
    )
    _, elsewhere = _signed_proposal(member, "Get", "k", channel="other")
    with pytest.raises(RpcError) as channel:
        await transport.evaluate(
            gateway_pb2.EvaluateRequest(channel_id="other", proposed_transaction=elsewhere),
            timeout=5,
        )
    assert channel.value.status == StatusCode.UNAVAILABLE


async def test_expired_identity_is_refused(ledger: EmbeddedLedger) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    msp = ledger.ca.enroll(
        "Org1",
        "old",
        "member",
        valid_from=now - dt.timedelta(days=2),
        valid_until=now - dt.timedelta(seconds=1),
    )
    async with embedded_gateway(ledger, msp, org="Org1") as gw:
        with pytest.raises(EvaluateError) as info:
            await gw.network(CHANNEL).contract("kv").evaluate("Get", "k")
    assert info.value.status == "FAILED_PRECONDITION"
    assert "access denied: channel [anchorline] creator org [Org1MSP]" in str(info.value)


async def test_endorser_identity_must_be_a_peer(ledger: EmbeddedLedger, member: Path) -> None:
    """An endorsement signed by a member (not a peer) does not count for the policy."""
    from fabric_protos.peer import proposal_response_pb2

    from gateway.ledger.protocol.transaction import assemble_transaction

    built, signed = _signed_proposal(member, "Put", "k", "v")
    transport = EmbeddedTransport(ledger, "Org1MSP")
    endorsed = await transport.endorse(
        gateway_pb2.EndorseRequest(channel_id=CHANNEL, proposed_transaction=signed), timeout=5
    )
    payload = common_pb2.Payload.FromString(endorsed.prepared_transaction.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    prp = cap.action.proposal_response_payload
    # Replace the peers' endorsements by two members' own signatures.
    forged = []
    for org in ("Org1", "Org2"):
        folder = load_msp(ledger.ca.enroll(org, f"m-{org}", "member"), f"{org}MSP")
        creator = folder.identity.serialize()
        forged.append(
            proposal_response_pb2.Endorsement(
                endorser=creator, signature=folder.signer().sign(sha256(prp + creator))
            )
        )
    envelope = assemble_transaction(built.proposal_bytes, prp, forged)
    folder = load_msp(member, "Org1MSP", require_key=True)
    envelope.signature = folder.signer().sign(sha256(envelope.payload))
    await transport.submit(
        gateway_pb2.SubmitRequest(channel_id=CHANNEL, prepared_transaction=envelope), timeout=5
    )
    await ledger.flush()
    assert ledger.store.transaction(built.transaction_id)[2] == (  # type: ignore[index]
        transaction_pb2.TxValidationCode.ENDORSEMENT_POLICY_FAILURE
    )


# -- commit status and events --------------------------------------------------------------


async def test_commit_status_waits_and_times_out(ledger: EmbeddedLedger, member: Path) -> None:
    folder = load_msp(member, "Org1MSP", require_key=True)
    request = build_commit_status_request("f" * 64, CHANNEL, folder.identity.serialize())
    signed = gateway_pb2.SignedCommitStatusRequest(
        request=request, signature=folder.signer().sign(sha256(request))
    )
    transport = EmbeddedTransport(ledger, "Org1MSP")
    with pytest.raises(RpcError) as info:
        await transport.commit_status(signed, timeout=0.2)
    assert (info.value.status, info.value.message) == (
        StatusCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
    )
    forged = gateway_pb2.SignedCommitStatusRequest(request=request, signature=b"\x30\x00")
    with pytest.raises(RpcError) as denied:
        await transport.commit_status(forged, timeout=1)
    assert denied.value.status == StatusCode.PERMISSION_DENIED
    assert "/Channel/Application/Readers" in denied.value.message


async def test_client_commit_status_deadline(contract, ledger: EmbeddedLedger) -> None:  # type: ignore[no-untyped-def]
    transaction = await contract.new_proposal("Put", "late", "1").endorse()
    # Accepted for ordering, but the block is never cut while the batch timer is stopped.
    ledger.config = dataclasses.replace(ledger.config, batch_timeout_s=3600)
    commit = await transaction.submit()
    ledger._pending.clear()  # the orderer "loses" it, as a Raft leader dying would
    with pytest.raises(LedgerTimeout):
        await commit.status(timeout=0.5)


async def _events(ledger: EmbeddedLedger, member: Path, checkpoint: Checkpoint | None, n: int):  # type: ignore[no-untyped-def]
    folder = load_msp(member, "Org1MSP", require_key=True)
    request = build_events_request(
        channel_id=CHANNEL,
        chaincode="kv",
        identity=folder.identity.serialize(),
        checkpoint=checkpoint,
    )
    signed = gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=folder.signer().sign(sha256(request))
    )
    stream = EmbeddedTransport(ledger, "Org1MSP").chaincode_events(signed, timeout=5)
    out = []
    async with asyncio.timeout(5):
        async for response in stream:
            out.append(response)
            if sum(len(r.events) for r in out) >= n:
                break
    await stream.aclose()  # type: ignore[attr-defined]
    return out


async def test_event_stream_positions(ledger: EmbeddedLedger, member: Path, contract) -> None:  # type: ignore[no-untyped-def]
    results = [await contract.submit("Emit", "changed", str(i)) for i in range(3)]
    # Specified start block: everything from there, one response per block.
    responses = await _events(ledger, member, Checkpoint(results[0].block_number), 3)
    assert [r.block_number for r in responses] == [r.block_number for r in results]
    assert [r.events[0].tx_id for r in responses] == [r.transaction_id for r in results]
    assert {e.event_name for r in responses for e in r.events} == {"changed"}
    assert {e.chaincode_id for r in responses for e in r.events} == {"kv"}
    # After a transaction: the peer skips up to and including it.
    after = await _events(
        ledger, member, Checkpoint(results[0].block_number, results[0].transaction_id), 2
    )
    assert [r.events[0].tx_id for r in after] == [r.transaction_id for r in results[1:]]

    # No position: only what commits from now on.
    async def later() -> None:
        await asyncio.sleep(0.1)
        await contract.submit("Emit", "changed", "live")

    task = asyncio.create_task(later())
    live = await _events(ledger, member, None, 1)
    await task
    assert json.loads(live[0].events[0].payload) == {"value": "live"}
    assert live[0].block_number == ledger.height - 1


async def test_invalid_transactions_emit_no_events(
    ledger: EmbeddedLedger, member: Path, contract
) -> None:  # type: ignore[no-untyped-def]
    commit = await contract.submit_async("Emit", "solo", "x", endorsing_orgs=["Org1MSP"])
    status = await commit.status()
    assert status.code_name == "ENDORSEMENT_POLICY_FAILURE"
    valid = await contract.submit("Emit", "ok", "y")
    responses = await _events(ledger, member, Checkpoint(status.block_number), 1)
    assert [e.event_name for e in responses[0].events] == ["ok"]
    assert responses[0].block_number == valid.block_number


async def test_closed_ledger_is_unavailable(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}))
    msp = led.ca.enroll("Org1", "alice", "member")
    await led.close()
    _, signed = _signed_proposal(msp, "Get", "k")
    with pytest.raises(RpcError) as info:
        await EmbeddedTransport(led, "Org1MSP").evaluate(
            gateway_pb2.EvaluateRequest(channel_id=CHANNEL, proposed_transaction=signed),
            timeout=5,
        )
    assert info.value.status == StatusCode.UNAVAILABLE
    # The folder is free again.
    EmbeddedLedger.open(led.config).close_sync()


# -- configuration -------------------------------------------------------------------------


def test_config_from_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ANCHORLINE_HOME": str(tmp_path),
            "ANCHORLINE_LEDGER_EMBEDDED_ORGS": "OrgA, OrgB",
            "ANCHORLINE_LEDGER_EMBEDDED_BATCH_TIMEOUT_MS": "50",
        }
    )
    config = config_from_settings(settings, extra_chaincodes={"kv": CONTRACTS})
    assert config.root == settings.embedded_dir
    assert config.orgs == ("OrgA", "OrgB")
    assert config.batch_timeout_s == 0.05
    assert set(config.chaincodes) == {settings.network.chaincode_name, "kv"}
    with pytest.raises(EmbeddedConfigError):
        EmbeddedConfig(root=tmp_path, orgs=())


async def test_unloadable_contracts_are_a_config_error(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"bad": "no.such.module:CONTRACTS"})
    )
    try:
        with pytest.raises(EmbeddedConfigError, match="cannot load contracts"):
            led.contracts("bad")
    finally:
        await led.close()


def test_peer_certificates_are_peers_of_their_org(tmp_path: Path) -> None:
    led = EmbeddedLedger.open(EmbeddedConfig(root=tmp_path / "led"))
    try:
        for msp_id, peer in led.peers.items():
            from fabric_protos.msp import identities_pb2

            sid = identities_pb2.SerializedIdentity.FromString(peer.creator)
            cert = load_certificate(sid.id_bytes)
            assert sid.mspid == msp_id
            assert led.trust.verify(cert, msp_id=msp_id).msp_id == msp_id
            assert "OU=peer" in cert.subject.rfc4514_string()
            assert cert.public_bytes(serialization.Encoding.PEM) == sid.id_bytes
    finally:
        led.close_sync()


def test_a_folder_keeps_its_channel(tmp_path: Path) -> None:
    EmbeddedLedger.open(EmbeddedConfig(root=tmp_path / "led")).close_sync()
    with pytest.raises(EmbeddedConfigError, match="holds channel 'anchorline', not 'other'"):
        EmbeddedLedger.open(EmbeddedConfig(root=tmp_path / "led", channel="other"))
    # The refusal released the folder.
    EmbeddedLedger.open(EmbeddedConfig(root=tmp_path / "led")).close_sync()


async def test_default_settings_deploy_the_anchorline_chaincode(tmp_path: Path) -> None:
    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    led = EmbeddedLedger.open(config_from_settings(settings))
    try:
        msp = led.ca.enroll("Org1", "alice", "member")
        async with embedded_gateway(led, msp, org="Org1") as gw:
            contract = gw.network(settings.network.channel).contract(
                settings.network.chaincode_name
            )
            metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
        assert set(metadata["contracts"]) == {"anchor", "settlement", "access"}
    finally:
        await led.close()


async def test_revoked_between_endorse_and_submit_is_forbidden(
    ledger: EmbeddedLedger, contract
) -> None:  # type: ignore[no-untyped-def]
    from gateway.ledger.errors import SubmitError

    transaction = await contract.new_proposal("Put", "r", "1").endorse()
    ledger.ca.revoke("Org1", "alice")
    with pytest.raises(SubmitError) as info:
        await transaction.submit()
    assert info.value.status == "ABORTED"
    assert "status=FORBIDDEN" in str(info.value)
    assert ledger.height == 1


async def test_event_start_position_newest_is_refused_like_fabric(
    ledger: EmbeddedLedger, member: Path
) -> None:
    from fabric_protos.orderer import ab_pb2

    folder = load_msp(member, "Org1MSP", require_key=True)
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=CHANNEL,
        chaincode_id="kv",
        identity=folder.identity.serialize(),
        start_position=ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest()),
    ).SerializeToString()
    signed = gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=folder.signer().sign(sha256(request))
    )
    stream = EmbeddedTransport(ledger, "Org1MSP").chaincode_events(signed, timeout=5)
    with pytest.raises(RpcError) as info:
        await stream.__anext__()
    assert (info.value.status, info.value.message) == (
        StatusCode.INVALID_ARGUMENT,
        "invalid start position type: *orderer.SeekPosition_Newest",
    )


async def test_non_deterministic_chaincode_cannot_be_endorsed(contract) -> None:  # type: ignore[no-untyped-def]
    # One peer evaluates: fine.
    assert len(await contract.evaluate("Random")) == 16
    with pytest.raises(EndorseError) as info:
        await contract.submit("Random")
    assert info.value.status == "ABORTED"
    assert [(d.msp_id, d.message) for d in info.value.peer_details] == [
        ("Org2MSP", "ProposalResponsePayloads do not match")
    ]
    assert "failed to collect enough transaction endorsements" in str(info.value)
