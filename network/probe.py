"""A minimal Fabric Gateway client for readiness checks and the network's own tests.

The real client is ``gateway.ledger``; this one exists so that ``network up``
and ``deploy-chaincode`` can wait on what matters (a peer's Gateway service
endorsing across orgs, a chaincode answering) without depending on it. It
does evaluate, endorse, and submit-with-commit-status, synchronously, as one
identity (an MSP folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2 as peer_events
from fabric_protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf import timestamp_pb2

from gateway.identity.signing import EcdsaSigner, sign_message
from network.profile import NetworkProfile


@dataclasses.dataclass(frozen=True)
class Signer:
    msp_id: str
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_msp(cls, msp_id: str, msp_dir: Path) -> Signer:
        cert = (msp_dir / "signcerts" / "cert.pem").read_bytes()
        key_files = sorted((msp_dir / "keystore").iterdir())
        key = serialization.load_pem_private_key(key_files[0].read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_files[0]} is not an EC private key")
        return cls(msp_id, cert, key)

    @property
    def creator(self) -> bytes:
        identity = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.cert_pem)
        return bytes(identity.SerializeToString())

    @property
    def fingerprint(self) -> str:
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def sign(self, message: bytes) -> bytes:
        return sign_message(EcdsaSigner(self.key), message)


@dataclasses.dataclass(frozen=True)
class Proposal:
    tx_id: str
    signed: proposal_pb2.SignedProposal


@dataclasses.dataclass(frozen=True)
class Committed:
    tx_id: str
    block: int
    endorsing_msps: tuple[str, ...]
    result: bytes


class GatewayProbe:
    """One peer's Gateway service, as one identity."""

    def __init__(
        self, address: str, tls_ca: Path, host_override: str, signer: Signer, channel: str
    ) -> None:
        creds = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
        self._channel = grpc.secure_channel(
            address, creds, options=[("grpc.ssl_target_name_override", host_override)]
        )
        self._stub = gateway_pb2_grpc.GatewayStub(self._channel)
        self.signer = signer
        self.channel = channel

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GatewayProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def proposal(self, chaincode: str, args: Sequence[bytes | str]) -> Proposal:
        nonce = os.urandom(24)
        creator = self.signer.creator
        tx_id = hashlib.sha256(nonce + creator).hexdigest()
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        cc_id = chaincode_pb2.ChaincodeID(name=chaincode)
        channel_header = common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION,
            channel_id=self.channel,
            tx_id=tx_id,
            timestamp=now,
            extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=cc_id).SerializeToString(),
        )
        header = common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(
                creator=creator, nonce=nonce
            ).SerializeToString(),
        )
        spec = chaincode_pb2.ChaincodeInvocationSpec(
            chaincode_spec=chaincode_pb2.ChaincodeSpec(
                type=chaincode_pb2.ChaincodeSpec.GOLANG,
                chaincode_id=cc_id,
                input=chaincode_pb2.ChaincodeInput(
                    args=[a.encode() if isinstance(a, str) else a for a in args]
                ),
            )
        )
        payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString())
        proposal_bytes = proposal_pb2.Proposal(
            header=header.SerializeToString(), payload=payload.SerializeToString()
        ).SerializeToString()
        signed = proposal_pb2.SignedProposal(
            proposal_bytes=proposal_bytes, signature=self.signer.sign(proposal_bytes)
        )
        return Proposal(tx_id, signed)

    def evaluate(self, chaincode: str, args: Sequence[bytes | str], timeout: float = 10) -> bytes:
        """The result payload; grpc.RpcError on a refusal (chaincode error: UNKNOWN)."""
        p = self.proposal(chaincode, args)
        response = self._stub.Evaluate(
            gateway_pb2.EvaluateRequest(
                transaction_id=p.tx_id, channel_id=self.channel, proposed_transaction=p.signed
            ),
            timeout=timeout,
        )
        return bytes(response.result.payload)

    def chaincode_events(
        self, chaincode: str, start_block: int, timeout: float = 10
    ) -> Iterator[tuple[int, peer_events.ChaincodeEvent]]:
        """(block number, event) for ``chaincode`` from ``start_block`` on, until ``timeout``."""
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=self.channel,
            chaincode_id=chaincode,
            identity=self.signer.creator,
            start_position=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block)),
        ).SerializeToString()
        stream = self._stub.ChaincodeEvents(
            gateway_pb2.SignedChaincodeEventsRequest(
                request=request, signature=self.signer.sign(request)
            ),
            timeout=timeout,
        )
        for response in stream:
            for event in response.events:
                yield int(response.block_number), event

    def endorse(
        self, chaincode: str, args: Sequence[bytes | str], timeout: float = 10
    ) -> tuple[str, common_pb2.Envelope]:
        """Endorse (no submit): the tx id and the prepared (unsigned) transaction."""
        p = self.proposal(chaincode, args)
        response = self._stub.Endorse(
            gateway_pb2.EndorseRequest(
                transaction_id=p.tx_id, channel_id=self.channel, proposed_transaction=p.signed
            ),
            timeout=timeout,
        )
        return p.tx_id, response.prepared_transaction

    def submit(self, chaincode: str, args: Sequence[bytes | str], timeout: float = 30) -> Committed:
        """Endorse, sign, submit and wait for the commit; raise if it is not VALID."""
        tx_id, envelope = self.endorse(chaincode, args, timeout=timeout)
        envelope.signature = self.signer.sign(envelope.payload)
        self._stub.Submit(
            gateway_pb2.SubmitRequest(
                transaction_id=tx_id, channel_id=self.channel, prepared_transaction=envelope
            ),
            timeout=timeout,
        )
        request = gateway_pb2.CommitStatusRequest(
            transaction_id=tx_id, channel_id=self.channel, identity=self.signer.creator
        ).SerializeToString()
        status = self._stub.CommitStatus(
            gateway_pb2.SignedCommitStatusRequest(
                request=request, signature=self.signer.sign(request)
            ),
            timeout=timeout,
        )
        code = transaction_pb2.TxValidationCode.Name(status.result)
        if status.result != transaction_pb2.VALID:
            raise RuntimeError(f"transaction {tx_id} committed as {code}")
        msps, result = endorsements_of(envelope)
        return Committed(tx_id, int(status.block_number), msps, result)


def endorsements_of(envelope: common_pb2.Envelope) -> tuple[tuple[str, ...], bytes]:
    """MSP ids of the endorsers of a prepared transaction, and its result payload."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    msps = tuple(
        identities_pb2.SerializedIdentity.FromString(e.endorser).mspid
        for e in action.action.endorsements
    )
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        action.action.proposal_response_payload
    )
    cc_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
    return msps, bytes(cc_action.response.payload)


def probe_for(profile: NetworkProfile, org: str, msp_dir: Path | None = None) -> GatewayProbe:
    """A probe on ``org``'s peer as ``msp_dir`` (default: the org's admin)."""
    o = profile.org(org)
    signer = Signer.from_msp(o.msp_id, msp_dir or o.admin_msp_dir)
    return GatewayProbe(
        o.peer_address, o.peer_tls_ca, o.peer_host_override, signer, profile.channel
    )
