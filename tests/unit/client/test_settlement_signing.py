"""The member refuses to sign what it did not ask for (offline signing checks)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from gateway.client.member import MemberClient
from gateway.client.settlement import LedgerSigner
from gateway.identity.ca import EmbeddedCA
from gateway.identity.signing import sha256
from gateway.ledger.protocol.proposal import build_proposal
from gateway.ledger.protocol.transaction import (
    assemble_transaction,
    build_proposal_response_payload,
)
from gateway.marketplace.errors import SignedBytesMismatch


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[MemberClient, MemberClient]:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    me = MemberClient.from_msp("http://127.0.0.1:1", ca.enroll("Org1", "me", "member"), "Org1MSP")
    other = MemberClient.from_msp(
        "http://127.0.0.1:1", ca.enroll("Org2", "other", "member"), "Org2MSP"
    )
    return me, other


def _prepared(
    creator: bytes, function: str = "settlement:Accept", args: tuple[str, ...] = ("s-1",)
) -> tuple[dict[str, Any], bytes]:
    built = build_proposal(
        channel_id="anchorline",
        chaincode="anchorline",
        function=function,
        args=args,
        creator=creator,
    )
    proposed = gateway_pb2.ProposedTransaction(
        transaction_id=built.transaction_id,
        proposal=proposal_pb2.SignedProposal(proposal_bytes=built.proposal_bytes),
    )
    body = {
        "tx_id": built.transaction_id,
        "bytes": base64.b64encode(proposed.SerializeToString()).decode(),
        "digest": sha256(built.proposal_bytes).hex(),
    }
    return body, built.proposal_bytes


def test_a_matching_proposal_is_signed(members: tuple[MemberClient, MemberClient]) -> None:
    me, _ = members
    signer = LedgerSigner(me)
    body, proposal = _prepared(signer.creator)
    assert signer.check_proposal(body, "settlement:Accept", ["s-1"]) == sha256(proposal)


@pytest.mark.parametrize("what", ["creator", "function", "args", "digest", "tx_id"])
def test_a_proposal_that_differs_is_refused(
    members: tuple[MemberClient, MemberClient], what: str
) -> None:
    me, other = members
    signer = LedgerSigner(me)
    creator = LedgerSigner(other).creator if what == "creator" else signer.creator
    body, _ = _prepared(creator, "settlement:Settle" if what == "function" else "settlement:Accept")
    args = ["s-2"] if what == "args" else ["s-1"]
    if what == "digest":
        body["digest"] = "00" * 32
    if what == "tx_id":
        body["tx_id"] = "ab" * 32
    with pytest.raises(SignedBytesMismatch):
        signer.check_proposal(body, "settlement:Accept", args)


def _endorsed(proposal: bytes, tx_id: str) -> dict[str, Any]:
    payload = build_proposal_response_payload(proposal, chaincode="anchorline", result=b"{}")
    envelope = assemble_transaction(proposal, payload, [])
    prepared = gateway_pb2.PreparedTransaction(transaction_id=tx_id, envelope=envelope)
    return {
        "bytes": base64.b64encode(prepared.SerializeToString()).decode(),
        "digest": sha256(envelope.payload).hex(),
    }


def test_the_endorsed_transaction_must_be_the_signed_proposal(
    members: tuple[MemberClient, MemberClient],
) -> None:
    me, other = members
    signer = LedgerSigner(me)
    body, proposal = _prepared(signer.creator)
    endorsed = _endorsed(proposal, body["tx_id"])
    assert signer.check_transaction(endorsed, body["tx_id"]) == bytes.fromhex(endorsed["digest"])
    foreign, foreign_proposal = _prepared(LedgerSigner(other).creator)
    with pytest.raises(SignedBytesMismatch):
        signer.check_transaction(_endorsed(foreign_proposal, foreign["tx_id"]), body["tx_id"])
    with pytest.raises(SignedBytesMismatch):
        signer.check_transaction({**endorsed, "digest": "11" * 32}, body["tx_id"])
