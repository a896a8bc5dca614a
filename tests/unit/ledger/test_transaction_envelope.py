"""Endorsed transactions: assembly as Fabric does it, result extraction, digests."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from gateway.errors import InvalidInput
from gateway.identity.signing import verify
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.proposal import build_proposal
from gateway.ledger.protocol.transaction import (
    assemble_transaction,
    build_proposal_response_payload,
    parse_envelope,
    proposal_hash,
    transaction_result,
)
from tests.unit.ledger.ledger_fakes import FakeLedger, FakePeer, make_identity


def _proposal(transient: dict[str, str] | None = None) -> tuple[bytes, str, bytes]:
    identity, _ = make_identity()
    built = build_proposal(
        channel_id="ch",
        chaincode="cc",
        function="Put",
        args=["k"],
        creator=identity.serialize(),
        transient=transient,
    )
    return built.proposal_bytes, built.transaction_id, identity.serialize()


def test_proposal_hash_ignores_transient_data() -> None:
    proposal_bytes, _, _ = _proposal({"secret": "a"})
    p = proposal_pb2.Proposal.FromString(proposal_bytes)
    header = common_pb2.Header.FromString(p.header)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(p.payload)
    stripped = proposal_pb2.ChaincodeProposalPayload(input=payload.input).SerializeToString()
    expected = hashlib.sha256(header.channel_header + header.signature_header + stripped).digest()
    assert proposal_hash(proposal_bytes) == expected


def test_assembled_transaction_layout_and_result() -> None:
    proposal_bytes, tx_id, creator = _proposal({"secret": "hidden"})
    prp = build_proposal_response_payload(proposal_bytes, chaincode="cc", result=b"42")
    e1 = proposal_response_pb2.Endorsement(endorser=b"org1", signature=b"s1")
    e2 = proposal_response_pb2.Endorsement(endorser=b"org2", signature=b"s2")
    dup = proposal_response_pb2.Endorsement(endorser=b"org1", signature=b"s3")
    envelope = assemble_transaction(proposal_bytes, prp, [e1, e2, dup])
    assert envelope.signature == b""
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    assert [e.endorser for e in cap.action.endorsements] == [b"org1", b"org2"]
    assert b"hidden" not in envelope.payload  # transient data never reaches the ledger
    assert tx.actions[0].header == payload.header.signature_header
    info = parse_envelope(envelope)
    assert (info.channel_id, info.transaction_id, info.creator) == ("ch", tx_id, creator)
    assert info.result == b"42" == transaction_result(envelope)


def test_malformed_envelope_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_envelope(common_pb2.Envelope(payload=b"\xff\xff"))


async def test_transaction_digest_signature_and_bytes_round_trip() -> None:
    identity, key = make_identity()
    gw = Gateway(identity, [FakePeer(FakeLedger())], signer=key)
    transaction = await gw.network("ch").contract("cc").new_proposal("Put", "k", "v").endorse()
    assert transaction.digest() == hashlib.sha256(transaction.envelope.payload).digest()
    prepared = gateway_pb2.PreparedTransaction.FromString(transaction.bytes())
    assert prepared.transaction_id == transaction.transaction_id
    signature = key.sign(transaction.digest())
    assert verify(identity.public_key, transaction.envelope.payload, signature)
    rebuilt = gw.new_signed_transaction(transaction.bytes(), signature)
    assert rebuilt.envelope.signature == signature
    assert rebuilt.transaction_id == transaction.transaction_id
    assert rebuilt.channel_id == "ch"
    assert transaction.with_signature(b"x").envelope.signature == b"x"
    assert transaction.envelope.signature == b""  # with_signature does not mutate
