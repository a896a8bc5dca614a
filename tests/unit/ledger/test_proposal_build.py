"""Proposal construction: transaction id, headers, payload, digests, parsing back."""

from __future__ import annotations

import hashlib

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from gateway.errors import InvalidInput
from gateway.identity.signing import verify
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.proposal import (
    build_proposal,
    new_nonce,
    parse_proposal,
    parse_signed_proposal,
    signed_proposal,
    transaction_id,
)
from tests.unit.ledger.ledger_fakes import FakeLedger, FakePeer, make_identity


def test_transaction_id_golden_vector() -> None:
    # Computed outside Python: printf '\x01' x24 'creator' | sha256sum
    assert transaction_id(b"\x01" * 24, b"creator") == (
        "091695e89e3ba88417a106b21ce5df1ad5dec914d669cc51fa1c48959ac3b0bd"
    )
    assert (
        transaction_id(b"", b"")
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_nonce_is_random_and_24_bytes() -> None:
    a, b = new_nonce(), new_nonce()
    assert len(a) == 24 and a != b


def test_built_proposal_headers_follow_the_protocol() -> None:
    identity, _ = make_identity("Org1MSP")
    creator = identity.serialize()
    nonce = b"n" * 24
    built = build_proposal(
        channel_id="anchorline",
        chaincode="testcc",
        function="Put",
        args=["k", b"\x00\xff"],
        creator=creator,
        transient={"secret": "s3"},
        nonce=nonce,
        timestamp_ns=1_700_000_000_123_456_789,
    )
    proposal = proposal_pb2.Proposal.FromString(built.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    assert ch.type == common_pb2.ENDORSER_TRANSACTION
    assert ch.channel_id == "anchorline"
    assert ch.epoch == 0
    assert ch.timestamp.seconds == 1_700_000_000 and ch.timestamp.nanos == 123_456_789
    assert ch.tx_id == hashlib.sha256(nonce + creator).hexdigest() == built.transaction_id
    ext = proposal_pb2.ChaincodeHeaderExtension.FromString(ch.extension)
    assert ext.chaincode_id.name == "testcc"
    sh = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert sh.nonce == nonce
    creator_msg = identities_pb2.SerializedIdentity.FromString(sh.creator)
    assert creator_msg.mspid == "Org1MSP"
    assert creator_msg.id_bytes == identity.certificate_pem
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    assert dict(payload.TransientMap) == {"secret": b"s3"}
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    assert spec.chaincode_id.name == "testcc"
    assert list(spec.input.args) == [b"Put", b"k", b"\x00\xff"]


def test_parse_is_the_inverse_of_build() -> None:
    identity, key = make_identity()
    built = build_proposal(
        channel_id="c",
        chaincode="cc",
        function="Contract:Fn",
        args=["a"],
        creator=identity.serialize(),
        transient={"t": b"x"},
    )
    sig = key.sign(hashlib.sha256(built.proposal_bytes).digest())
    info = parse_signed_proposal(signed_proposal(built.proposal_bytes, sig))
    assert (info.channel_id, info.chaincode, info.function) == ("c", "cc", "Contract:Fn")
    assert info.args == (b"a",)
    assert info.transient == {"t": b"x"}
    assert info.transaction_id == built.transaction_id
    assert info.transaction_id_is_valid
    assert info.creator == identity.serialize()
    assert info.signature == sig
    assert info.header_type == common_pb2.ENDORSER_TRANSACTION


def test_tampered_transaction_id_is_detected() -> None:
    built = build_proposal(channel_id="c", chaincode="cc", function="f", creator=b"x")
    proposal = proposal_pb2.Proposal.FromString(built.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    ch.tx_id = "0" * 64
    header.channel_header = ch.SerializeToString()
    proposal.header = header.SerializeToString()
    assert not parse_proposal(proposal.SerializeToString()).transaction_id_is_valid


def test_malformed_proposal_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_proposal(b"\xff\xff\xff")


def test_missing_names_are_refused() -> None:
    with pytest.raises(InvalidInput):
        build_proposal(channel_id="", chaincode="cc", function="f", creator=b"x")


def test_proposal_digest_bytes_and_signature() -> None:
    identity, key = make_identity()
    gw = Gateway(identity, [FakePeer(FakeLedger())], signer=key)
    proposal = (
        gw.network("ch")
        .contract("cc", "Asset")
        .new_proposal("Create", "1", endorsing_orgs=["Org1MSP", "Org3MSP"])
    )
    assert proposal.digest() == hashlib.sha256(proposal.proposal_bytes()).digest()
    proposed = gateway_pb2.ProposedTransaction.FromString(proposal.bytes())
    assert proposed.transaction_id == proposal.transaction_id
    assert proposed.proposal.proposal_bytes == proposal.proposal_bytes()
    assert list(proposed.endorsing_organizations) == ["Org1MSP", "Org3MSP"]
    assert parse_proposal(proposal.proposal_bytes()).function == "Asset:Create"
    signature = key.sign(proposal.digest())
    assert verify(identity.public_key, proposal.proposal_bytes(), signature)
    rebuilt = gw.new_signed_proposal(proposal.bytes(), signature)
    assert rebuilt.signature == signature
    assert rebuilt.endorsing_orgs == ("Org1MSP", "Org3MSP")
    assert rebuilt.digest() == proposal.digest()
