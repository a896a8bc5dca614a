"""Proposals: building and parsing a ``peer.Proposal`` (pure functions, no I/O).

Shared by the client (:mod:`gateway.ledger.proposal`) and the embedded peer.

- :func:`new_nonce` — 24 random bytes, as Fabric's clients use.
- :func:`transaction_id` — hex SHA-256 of ``nonce + creator`` (Fabric's rule;
  a peer refuses a proposal whose transaction id does not match).
- :func:`build_proposal` — a ``peer.Proposal`` for a chaincode invocation:
  channel header (ENDORSER_TRANSACTION, timestamp, channel, tx id, epoch 0,
  ``ChaincodeHeaderExtension``), signature header (creator, nonce),
  ``ChaincodeProposalPayload`` (``ChaincodeInvocationSpec`` with the
  arguments ``[function, *args]`` and the transient map). Returns
  :class:`BuiltProposal` (bytes and transaction id).
- :func:`parse_proposal` / :func:`parse_signed_proposal` — the inverse:
  :class:`ProposalInfo` with channel, transaction id, creator, nonce,
  timestamp, chaincode, function, args and transient data.
- :func:`signed_proposal` — a ``peer.SignedProposal`` from bytes and a signature.
- :func:`header_timestamp` — a header's ``Timestamp`` (now, or the given ns).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import time
from collections.abc import Mapping, Sequence

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from gateway.errors import InvalidInput

NONCE_LENGTH = 24

Arg = str | bytes


def new_nonce() -> bytes:
    """A fresh random nonce for a signature header."""
    return os.urandom(NONCE_LENGTH)


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: hex SHA-256 of the nonce followed by the serialized creator."""
    return hashlib.sha256(nonce + creator).hexdigest()


def as_bytes(value: Arg) -> bytes:
    """Chaincode arguments travel as bytes; text is UTF-8."""
    return value.encode() if isinstance(value, str) else bytes(value)


@dataclasses.dataclass(frozen=True)
class BuiltProposal:
    """A serialized ``peer.Proposal`` and the transaction id it carries."""

    proposal_bytes: bytes
    transaction_id: str
    channel_id: str
    chaincode: str


def header_timestamp(now_ns: int | None) -> timestamp_pb2.Timestamp:
    ns = time.time_ns() if now_ns is None else now_ns
    ts = timestamp_pb2.Timestamp()
    ts.seconds, ts.nanos = divmod(ns, 1_000_000_000)
    return ts


def build_proposal(
    *,
    channel_id: str,
    chaincode: str,
    function: str,
    args: Sequence[Arg] = (),
    creator: bytes,
    transient: Mapping[str, Arg] | None = None,
    nonce: bytes | None = None,
    timestamp_ns: int | None = None,
) -> BuiltProposal:
    """Build a chaincode invocation proposal; see the module docstring for its layout."""
    if not channel_id or not chaincode or not function:
        raise InvalidInput("a proposal needs a channel, a chaincode name and a function name")
    nonce = new_nonce() if nonce is None else nonce
    tx_id = transaction_id(nonce, creator)
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=header_timestamp(timestamp_ns),
        channel_id=channel_id,
        tx_id=tx_id,
        epoch=0,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_id
        ).SerializeToString(),
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id,
            input=chaincode_pb2.ChaincodeInput(
                args=[function.encode(), *(as_bytes(a) for a in args)]
            ),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString(),
        TransientMap={k: as_bytes(v) for k, v in (transient or {}).items()},
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return BuiltProposal(
        proposal_bytes=bytes(proposal.SerializeToString()),
        transaction_id=tx_id,
        channel_id=channel_id,
        chaincode=chaincode,
    )


@dataclasses.dataclass(frozen=True)
class ProposalInfo:
    """What a proposal says, parsed back from its bytes."""

    channel_id: str
    transaction_id: str
    header_type: int
    timestamp: datetime.datetime
    creator: bytes
    nonce: bytes
    chaincode: str
    function: str
    args: tuple[bytes, ...]
    transient: Mapping[str, bytes]
    proposal_bytes: bytes
    signature: bytes = b""

    @property
    def transaction_id_is_valid(self) -> bool:
        """True when the transaction id is the one Fabric derives from nonce and creator."""
        return self.transaction_id == transaction_id(self.nonce, self.creator)


def parse_proposal(proposal_bytes: bytes) -> ProposalInfo:
    """Parse ``peer.Proposal`` bytes; :class:`InvalidInput` names the part that is malformed."""
    try:
        proposal = proposal_pb2.Proposal.FromString(proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        invocation = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
        extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    except DecodeError as exc:
        raise InvalidInput(f"malformed proposal: {exc}") from None
    spec_args = tuple(bytes(a) for a in invocation.chaincode_spec.input.args)
    chaincode = invocation.chaincode_spec.chaincode_id.name or extension.chaincode_id.name
    ts = channel_header.timestamp
    return ProposalInfo(
        channel_id=str(channel_header.channel_id),
        transaction_id=str(channel_header.tx_id),
        header_type=int(channel_header.type),
        timestamp=datetime.datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=datetime.UTC),
        creator=bytes(signature_header.creator),
        nonce=bytes(signature_header.nonce),
        chaincode=str(chaincode),
        function=spec_args[0].decode("utf-8", "replace") if spec_args else "",
        args=spec_args[1:],
        transient={str(k): bytes(v) for k, v in payload.TransientMap.items()},
        proposal_bytes=bytes(proposal_bytes),
    )


def parse_signed_proposal(signed: proposal_pb2.SignedProposal) -> ProposalInfo:
    """Parse a ``peer.SignedProposal``; the signature is kept, not checked."""
    info = parse_proposal(bytes(signed.proposal_bytes))
    return dataclasses.replace(info, signature=bytes(signed.signature))


def signed_proposal(proposal_bytes: bytes, signature: bytes) -> proposal_pb2.SignedProposal:
    return proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=signature)
