"""The endorsing peer's side: check a signed proposal, simulate it, sign the result.

Follows Fabric's ``core/endorser`` (``UnpackProposal``, ``Validate``,
``preProcess``, ``ProcessProposalSuccessfullyOrError``) so the outcome, and the
text of each refusal, is what a Fabric peer produces:

- a proposal that cannot be accepted (wrong header type, non-zero epoch, no
  nonce or creator, wrong transaction id, creator not valid for the channel, bad
  signature, duplicate transaction id) is an :class:`EndorserRefusal` with
  ``grpc_error=True`` — the peer's ``ProcessProposal`` returns an error;
- a failure while processing (chaincode not defined, simulation error) is an
  :class:`EndorserRefusal` with ``grpc_error=False`` — a status-500 response
  without payload;
- a chaincode error is a :class:`Simulation` whose response status is ≥ 400.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from gateway.errors import AnchorlineError
from gateway.identity.certificates import TrustStore, load_certificate
from gateway.identity.errors import (
    BadCertificateChain,
    CertificateRejected,
    UnknownCertificateAuthority,
)
from gateway.identity.signing import Signer, sign_message, verify
from gateway.ledger.embedded.store import BlockStore
from gateway.ledger.embedded.stub import SimulationStub
from gateway.ledger.protocol.proposal import ProposalInfo, parse_signed_proposal, transaction_id
from gateway.ledger.protocol.transaction import build_proposal_response_payload

#: Fabric's shim thresholds: < 400 endorsed, ≥ 500 an error with a payload.
ERROR_THRESHOLD = 400
CHAINCODE_VERSION = "1.0"
# Fabric's preProcess wraps every Validate failure with this.
_INVALID = "error validating proposal: "

#: Runs one transaction against a chaincode's contracts through a stub.
Dispatcher = Callable[[Sequence[Any], Any], Awaitable[Any]]


class EndorserRefusal(Exception):
    """The peer refused the proposal; ``message`` is the peer's text."""

    def __init__(self, message: str, *, grpc_error: bool) -> None:
        super().__init__(message)
        self.message = message
        self.grpc_error = grpc_error


@dataclasses.dataclass(frozen=True)
class Peer:
    """One org's endorsing peer: its MSP, serialized identity and signer."""

    msp_id: str
    address: str
    creator: bytes
    signer: Signer


@dataclasses.dataclass(frozen=True)
class CheckedProposal:
    """A proposal that passed the peer's checks."""

    info: ProposalInfo
    signed: proposal_pb2.SignedProposal
    channel_header: common_pb2.ChannelHeader
    creator_msp_id: str
    creator_id_bytes: bytes


@dataclasses.dataclass(frozen=True)
class Simulation:
    """The outcome of running a proposal: response, read/write set, event."""

    status: int
    message: str
    payload: bytes
    results: bytes
    event: bytes
    response_payload: bytes

    @property
    def failed(self) -> bool:
        return self.status >= ERROR_THRESHOLD


@dataclasses.dataclass(frozen=True)
class Creator:
    """A creator (or endorser) placed in a channel MSP."""

    msp_id: str
    id_bytes: bytes
    certificate: x509.Certificate
    #: The certificate is valid now: validity window, key usage, not revoked.
    valid: bool


def deserialize_creator(creator: bytes, trust: TrustStore) -> Creator | None:
    """The creator when its certificate chains to a CA of the MSP it names, else None.

    As Fabric's MSP ``DeserializeIdentity``: an unknown MSP, a malformed identity
    or a certificate from another CA cannot be placed at all; one that can be
    placed but is expired or revoked is returned with ``valid=False``.
    """
    parsed = _parse_creator(creator)
    if parsed is None or parsed[0] not in trust.msp_ids:
        return None
    msp_id, id_bytes, cert = parsed
    try:
        trust.verify(cert, msp_id=msp_id)
    except (UnknownCertificateAuthority, BadCertificateChain):
        return None
    except CertificateRejected:
        return Creator(msp_id, id_bytes, cert, valid=False)
    return Creator(msp_id, id_bytes, cert, valid=True)


@functools.lru_cache(maxsize=1024)
def _parse_creator(creator: bytes) -> tuple[str, bytes, x509.Certificate] | None:
    # The same few creators sign almost every request: parse each once.
    try:
        sid = identities_pb2.SerializedIdentity.FromString(creator)
        return str(sid.mspid), bytes(sid.id_bytes), load_certificate(bytes(sid.id_bytes))
    except (DecodeError, AnchorlineError, ValueError):
        return None


def creator_is_valid(
    creator: bytes, message: bytes, signature: bytes, trust: TrustStore
) -> tuple[str | None, bool]:
    """``(msp_id, valid)``: msp_id is None when the creator cannot be placed in a channel
    MSP; valid when its certificate is valid now and it signed ``message``.
    """
    found = deserialize_creator(creator, trust)
    if found is None:
        return None, False
    key = found.certificate.public_key()
    if not found.valid or not isinstance(key, ec.EllipticCurvePublicKey):
        return found.msp_id, False
    return found.msp_id, verify(key, message, signature)


def check_proposal(
    signed: proposal_pb2.SignedProposal,
    *,
    channel_id: str,
    trust: TrustStore,
    store: BlockStore,
) -> CheckedProposal:
    """Fabric's ``UnpackProposal``, ``Validate`` and ``preProcess``; raises EndorserRefusal."""
    try:
        info = parse_signed_proposal(signed)
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    except (AnchorlineError, DecodeError) as exc:
        raise EndorserRefusal(str(getattr(exc, "message", exc)), grpc_error=True) from None
    if not info.chaincode:
        raise EndorserRefusal("ChaincodeHeaderExtension.ChaincodeId.Name is empty", grpc_error=True)
    if not info.function:
        raise EndorserRefusal("chaincode input did not contain any input", grpc_error=True)
    if info.channel_id != channel_id:
        raise EndorserRefusal(f"channel '{info.channel_id}' not found", grpc_error=False)
    if info.header_type != common_pb2.ENDORSER_TRANSACTION:
        name = (
            common_pb2.HeaderType.Name(info.header_type)
            if info.header_type in (common_pb2.HeaderType.values())
            else str(info.header_type)
        )
        raise EndorserRefusal(_INVALID + f"invalid header type {name}", grpc_error=True)
    if channel_header.epoch != 0:
        raise EndorserRefusal(_INVALID + "epoch is non-zero", grpc_error=True)
    if not info.nonce:
        raise EndorserRefusal(_INVALID + "nonce is empty", grpc_error=True)
    if not info.creator:
        raise EndorserRefusal(_INVALID + "creator is empty", grpc_error=True)
    expected = transaction_id(info.nonce, info.creator)
    if info.transaction_id != expected:
        raise EndorserRefusal(
            f"{_INVALID}incorrectly computed txid '{info.transaction_id}' -- expected '{expected}'",
            grpc_error=True,
        )
    if not signed.signature:
        raise EndorserRefusal(_INVALID + "empty signature bytes", grpc_error=True)
    msp_id, valid = creator_is_valid(info.creator, signed.proposal_bytes, signed.signature, trust)
    if msp_id is None:
        raise EndorserRefusal(
            f"{_INVALID}access denied: channel [{channel_id}] creator org unknown, "
            "creator is malformed",
            grpc_error=True,
        )
    if not valid:
        raise EndorserRefusal(
            f"{_INVALID}access denied: channel [{channel_id}] creator org [{msp_id}]",
            grpc_error=True,
        )
    if store.transaction(info.transaction_id) is not None:
        raise EndorserRefusal(
            f"duplicate transaction found [{info.transaction_id}]. Creator [{info.creator.hex()}]",
            grpc_error=True,
        )
    sid = identities_pb2.SerializedIdentity.FromString(info.creator)
    return CheckedProposal(
        info=info,
        signed=signed,
        channel_header=channel_header,
        creator_msp_id=msp_id,
        creator_id_bytes=bytes(sid.id_bytes),
    )


async def simulate(
    checked: CheckedProposal,
    *,
    contracts: Sequence[Any],
    store: BlockStore,
    dispatcher: Dispatcher,
) -> Simulation:
    """Run the chaincode through a recording stub; the response and what it read and wrote."""
    info = checked.info
    stub = SimulationStub(
        store,
        namespace=info.chaincode,
        channel_id=info.channel_id,
        tx_id=info.transaction_id,
        args=(info.function.encode(), *info.args),
        creator_msp_id=checked.creator_msp_id,
        creator_id_bytes=checked.creator_id_bytes,
        timestamp=checked.channel_header.timestamp,
        transient=info.transient,
        signed_proposal=checked.signed,
    )
    try:
        response = await dispatcher(contracts, stub)
    except Exception as exc:
        raise EndorserRefusal(
            f"error in simulation: transaction returned with failure: {exc}", grpc_error=False
        ) from None
    status, message, payload = int(response.status), str(response.message), bytes(response.payload)
    event = stub.event()
    event_bytes = b"" if event is None else bytes(event.SerializeToString())
    results = stub.results()
    response_payload = build_proposal_response_payload(
        bytes(checked.signed.proposal_bytes),
        chaincode=info.chaincode,
        result=payload,
        status=status,
        message=message,
        results=results,
        events=event_bytes,
        chaincode_version=CHAINCODE_VERSION,
    )
    return Simulation(status, message, payload, results, event_bytes, response_payload)


def endorse(simulation: Simulation, peer: Peer) -> proposal_response_pb2.ProposalResponse:
    """The peer's signed ``ProposalResponse`` (ESCC: signature over payload + endorser)."""
    response = proposal_response_pb2.Response(
        status=simulation.status, message=simulation.message, payload=simulation.payload
    )
    if simulation.failed:
        if simulation.status >= 500:
            return proposal_response_pb2.ProposalResponse(
                response=response, payload=simulation.response_payload
            )
        return proposal_response_pb2.ProposalResponse(response=response)
    signature = sign_message(peer.signer, simulation.response_payload + peer.creator)
    return proposal_response_pb2.ProposalResponse(
        version=1,
        response=response,
        payload=simulation.response_payload,
        endorsement=proposal_response_pb2.Endorsement(endorser=peer.creator, signature=signature),
    )
