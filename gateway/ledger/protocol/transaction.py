"""Transaction envelopes: what an endorser signs, what a creator submits (pure functions).

Shared by the client (:mod:`gateway.ledger.transaction`) and the embedded peer.

- :func:`parse_envelope` — channel, transaction id, creator and the
  chaincode's result from an endorsed transaction ``common.Envelope``.
- :func:`transaction_result` — only the chaincode's result.
- :func:`proposal_hash`, :func:`build_proposal_response_payload`,
  :func:`assemble_transaction` — what an endorsing peer and the Gateway
  service build from a proposal (Fabric's ``protoutil`` rules: the transient
  map is stripped, the proposal hash covers channel header, signature header
  and the stripped payload; the transaction carries the first response's
  payload and every distinct endorsement).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from gateway.errors import InvalidInput
from gateway.identity.signing import sha256


@dataclasses.dataclass(frozen=True)
class EnvelopeInfo:
    """What an endorsed transaction envelope says."""

    channel_id: str
    transaction_id: str
    header_type: int
    creator: bytes
    result: bytes


def parse_envelope(envelope: common_pb2.Envelope) -> EnvelopeInfo:
    """Parse an endorsed transaction; :class:`InvalidInput` when it is malformed."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        result = b""
        if channel_header.type == common_pb2.ENDORSER_TRANSACTION:
            transaction = transaction_pb2.Transaction.FromString(payload.data)
            if transaction.actions:
                action = transaction_pb2.ChaincodeActionPayload.FromString(
                    transaction.actions[0].payload
                )
                response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
                    action.action.proposal_response_payload
                )
                chaincode_action = proposal_pb2.ChaincodeAction.FromString(
                    response_payload.extension
                )
                result = bytes(chaincode_action.response.payload)
    except DecodeError as exc:
        raise InvalidInput(f"malformed transaction envelope: {exc}") from None
    return EnvelopeInfo(
        channel_id=str(channel_header.channel_id),
        transaction_id=str(channel_header.tx_id),
        header_type=int(channel_header.type),
        creator=bytes(signature_header.creator),
        result=result,
    )


def _payload_for_tx(payload: bytes) -> bytes:
    stripped = proposal_pb2.ChaincodeProposalPayload.FromString(payload)
    return bytes(proposal_pb2.ChaincodeProposalPayload(input=stripped.input).SerializeToString())


def proposal_hash(proposal_bytes: bytes) -> bytes:
    """The hash a proposal response binds to (transient data excluded)."""
    try:
        proposal = proposal_pb2.Proposal.FromString(proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        tx_payload = _payload_for_tx(proposal.payload)
    except DecodeError as exc:
        raise InvalidInput(f"malformed proposal: {exc}") from None
    return sha256(header.channel_header + header.signature_header + tx_payload)


def build_proposal_response_payload(
    proposal_bytes: bytes,
    *,
    chaincode: str,
    result: bytes,
    status: int = 200,
    message: str = "",
    results: bytes = b"",
    events: bytes = b"",
    chaincode_version: str = "",
) -> bytes:
    """A serialized ``peer.ProposalResponsePayload`` (what each endorser signs).

    ``results`` is the serialized read/write set, ``events`` a serialized
    ``peer.ChaincodeEvent`` (empty for none).
    """
    action = proposal_pb2.ChaincodeAction(
        results=results,
        events=events,
        response=proposal_response_pb2.Response(status=status, message=message, payload=result),
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode, version=chaincode_version),
    )
    payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=proposal_hash(proposal_bytes), extension=action.SerializeToString()
    )
    return bytes(payload.SerializeToString())


def assemble_transaction(
    proposal_bytes: bytes,
    response_payload: bytes,
    endorsements: Sequence[proposal_response_pb2.Endorsement],
) -> common_pb2.Envelope:
    """The unsigned transaction envelope for an endorsed proposal (``PreparedTransaction``)."""
    try:
        proposal = proposal_pb2.Proposal.FromString(proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        tx_payload = _payload_for_tx(proposal.payload)
    except DecodeError as exc:
        raise InvalidInput(f"malformed proposal: {exc}") from None
    seen: set[bytes] = set()
    distinct = []
    for endorsement in endorsements:
        if endorsement.endorser not in seen:
            seen.add(endorsement.endorser)
            distinct.append(endorsement)
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=tx_payload,
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload, endorsements=distinct
        ),
    )
    transaction = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=header.signature_header, payload=action_payload.SerializeToString()
            )
        ]
    )
    payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def transaction_result(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's result carried by an endorsed transaction."""
    return parse_envelope(envelope).result
