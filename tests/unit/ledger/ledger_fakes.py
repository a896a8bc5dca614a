"""A fake peer for unit tests: answers Gateway calls the way a Fabric peer does.

It checks every signature against the creator in the request (so a wrong or
missing signature fails like on Fabric), runs a tiny key-value chaincode
(Put, Get, Fail, PutWithEvent), commits each submitted transaction in its own
block, and can be told to fail calls in the ways a real network does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_response_pb2, transaction_pb2

from gateway.identity.msp import Identity, identity_from_pem, parse_serialized_identity
from gateway.identity.signing import EcdsaSigner, verify
from gateway.ledger.protocol.proposal import parse_signed_proposal
from gateway.ledger.protocol.transaction import (
    assemble_transaction,
    build_proposal_response_payload,
    parse_envelope,
)
from gateway.ledger.transport import PeerErrorDetail, RpcError, StatusCode


def make_identity(msp_id: str = "Org1MSP", name: str = "alice") -> tuple[Identity, EcdsaSigner]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return identity_from_pem(msp_id, pem), EcdsaSigner(key)


@dataclasses.dataclass
class Block:
    number: int
    tx_id: str
    valid_code: int
    event: chaincode_event_pb2.ChaincodeEvent | None


@dataclasses.dataclass
class FakeLedger:
    state: dict[str, bytes] = dataclasses.field(default_factory=dict)
    blocks: list[Block] = dataclasses.field(default_factory=list)
    submitted: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    # Transaction ids whose next submission the "orderer" silently drops.
    lose: set[str] = dataclasses.field(default_factory=set)
    # The "orderer" drops every submission (a long outage).
    drop_all: bool = False
    # Transaction ids that commit only after this many seconds (a slow queue, not a loss).
    slow: dict[str, float] = dataclasses.field(default_factory=dict)
    # Validation code to give the next committed transaction (e.g. MVCC_READ_CONFLICT).
    next_code: int = transaction_pb2.VALID
    first_block: int = 5
    committed: dict[str, Block] = dataclasses.field(default_factory=dict)
    commit_signal: asyncio.Event | None = None

    def commit(self, tx_id: str, writes: dict[str, bytes], event: Any) -> None:
        if tx_id in self.committed:
            return  # Fabric marks a repeat DUPLICATE_TXID and keeps the first status
        code, self.next_code = self.next_code, transaction_pb2.VALID
        block = Block(self.first_block + len(self.blocks), tx_id, code, event)
        self.blocks.append(block)
        self.committed[tx_id] = block
        if code == transaction_pb2.VALID:
            self.state.update(writes)
        if self.commit_signal is not None:
            self.commit_signal.set()


def _check(signature: bytes, message: bytes, creator: bytes) -> None:
    identity = parse_serialized_identity(creator)
    if not verify(identity.public_key, message, signature):
        raise RpcError(StatusCode.PERMISSION_DENIED, "signature does not verify (fake peer)")


class FakePeer:
    """Implements GatewayTransport in memory."""

    def __init__(
        self, ledger: FakeLedger, address: str = "peer0.org1:7051", msp_id: str = "Org1MSP"
    ) -> None:
        self.ledger = ledger
        self.address = address
        self.msp_id = msp_id
        self.calls: list[str] = []
        self.fail: dict[str, list[RpcError]] = {}
        self.down = False
        self.events_honour_after_tx = True
        self.events_break_after: int | None = None
        self.last_events_request: gateway_pb2.ChaincodeEventsRequest | None = None
        self.closed = False
        self.endorse_requests: list[gateway_pb2.EndorseRequest] = []
        self.evaluate_requests: list[gateway_pb2.EvaluateRequest] = []

    @property
    def endpoint(self) -> str:
        return self.address

    def _enter(self, op: str) -> None:
        self.calls.append(op)
        if self.down:
            raise RpcError(
                StatusCode.UNAVAILABLE, "failed to connect to all addresses", endpoint=self.address
            )
        queue = self.fail.get(op)
        if queue:
            raise queue.pop(0)

    def _run(self, request: Any) -> tuple[Any, bytes, dict[str, bytes], Any]:
        info = parse_signed_proposal(request.proposed_transaction)
        _check(info.signature, info.proposal_bytes, info.creator)
        if not info.transaction_id_is_valid:
            raise RpcError(StatusCode.FAILED_PRECONDITION, "invalid txid")
        args = [a.decode() for a in info.args]
        writes: dict[str, bytes] = {}
        event = None
        if info.function == "Put":
            writes[args[0]] = args[1].encode()
            result = b""
        elif info.function == "PutWithEvent":
            writes[args[0]] = args[1].encode()
            result = b""
            event = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=info.chaincode,
                tx_id=info.transaction_id,
                event_name="put",
                payload=json.dumps({"key": args[0], "value": args[1]}).encode(),
            )
        elif info.function == "Get":
            result = self.ledger.state.get(args[0], b"")
        elif info.function == "Fail":
            raise _ChaincodeFailed(args[0])
        else:
            raise _ChaincodeFailed(f"unknown function {info.function}")
        return info, result, writes, event

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float
    ) -> gateway_pb2.EvaluateResponse:
        self._enter("evaluate")
        self.evaluate_requests.append(request)
        try:
            _, result, _, _ = self._run(request)
        except _ChaincodeFailed as exc:
            raise RpcError(
                StatusCode.UNKNOWN,
                f"evaluate call to endorser returned error: chaincode response 500, {exc}",
                (PeerErrorDetail(self.address, self.msp_id, f"chaincode response 500, {exc}"),),
                endpoint=self.address,
            ) from None
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=result)
        )

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float
    ) -> gateway_pb2.EndorseResponse:
        self._enter("endorse")
        self.endorse_requests.append(request)
        try:
            info, result, writes, event = self._run(request)
        except _ChaincodeFailed as exc:
            raise RpcError(
                StatusCode.ABORTED,
                "failed to endorse transaction, see attached details for more info",
                (
                    PeerErrorDetail(self.address, self.msp_id, f"chaincode response 500, {exc}"),
                    PeerErrorDetail("peer0.org2:9051", "Org2MSP", f"chaincode response 500, {exc}"),
                ),
                endpoint=self.address,
            ) from None
        # Writes and the event ride in the read/write-set field, as JSON: fake only.
        payload = build_proposal_response_payload(
            info.proposal_bytes,
            chaincode=info.chaincode,
            result=result,
            results=json.dumps({k: v.decode() for k, v in writes.items()}).encode(),
            events=event.SerializeToString() if event is not None else b"",
        )
        endorsement = proposal_response_pb2.Endorsement(endorser=b"peer", signature=b"sig")
        envelope = assemble_transaction(info.proposal_bytes, payload, [endorsement])
        return gateway_pb2.EndorseResponse(prepared_transaction=envelope)

    async def submit(
        self, request: gateway_pb2.SubmitRequest, *, timeout: float
    ) -> gateway_pb2.SubmitResponse:
        self._enter("submit")
        envelope = request.prepared_transaction
        info = parse_envelope(envelope)
        _check(envelope.signature, envelope.payload, info.creator)
        self.ledger.submitted.append((info.transaction_id, bytes(envelope.signature)))
        if self.ledger.drop_all:
            return gateway_pb2.SubmitResponse()
        if info.transaction_id in self.ledger.lose:
            self.ledger.lose.discard(info.transaction_id)
            return gateway_pb2.SubmitResponse()
        writes, event = _writes_and_event(envelope)
        delay = self.ledger.slow.pop(info.transaction_id, None)
        if delay is not None:
            asyncio.get_running_loop().call_later(
                delay, self.ledger.commit, info.transaction_id, writes, event
            )
        else:
            self.ledger.commit(info.transaction_id, writes, event)
        return gateway_pb2.SubmitResponse()

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, *, timeout: float
    ) -> gateway_pb2.CommitStatusResponse:
        self._enter("commit_status")
        inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        _check(request.signature, request.request, inner.identity)
        # A real peer waits for the commit; a lost transaction never comes.
        end = asyncio.get_running_loop().time() + timeout
        while (block := self.ledger.committed.get(inner.transaction_id)) is None:
            if asyncio.get_running_loop().time() >= end:
                raise RpcError(
                    StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded", endpoint=self.address
                )
            await asyncio.sleep(0.005)
        return gateway_pb2.CommitStatusResponse(result=block.valid_code, block_number=block.number)

    async def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, *, timeout: float | None
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        self._enter("chaincode_events")
        inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        _check(request.signature, request.request, inner.identity)
        self.last_events_request = inner
        start = (
            inner.start_position.specified.number
            if inner.start_position.HasField("specified")
            else (self.ledger.first_block + len(self.ledger.blocks))
        )
        after = inner.after_transaction_id if self.events_honour_after_tx else ""
        passed = not after
        sent = 0
        index = 0
        while True:
            while index < len(self.ledger.blocks):
                block = self.ledger.blocks[index]
                index += 1
                if block.number < start or block.event is None or block.valid_code != 0:
                    if not passed and block.tx_id == after:
                        passed = True
                    continue
                if not passed:
                    if block.tx_id == after:
                        passed = True
                    continue
                if block.event.chaincode_id != inner.chaincode_id:
                    continue
                if self.events_break_after is not None and sent >= self.events_break_after:
                    self.events_break_after = None
                    raise RpcError(StatusCode.UNAVAILABLE, "peer went away", endpoint=self.address)
                sent += 1
                yield gateway_pb2.ChaincodeEventsResponse(
                    events=[block.event], block_number=block.number
                )
            signal = self.ledger.commit_signal = asyncio.Event()
            await signal.wait()

    async def close(self) -> None:
        self.closed = True


class _ChaincodeFailed(Exception):
    pass


def _writes_and_event(envelope: Any) -> tuple[dict[str, bytes], Any]:
    from fabric_protos.common import common_pb2
    from fabric_protos.peer import proposal_pb2

    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    prp = proposal_response_pb2.ProposalResponsePayload.FromString(
        cap.action.proposal_response_payload
    )
    action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
    writes = {k: v.encode() for k, v in json.loads(action.results or b"{}").items()}
    event = chaincode_event_pb2.ChaincodeEvent.FromString(action.events) if action.events else None
    return writes, event


class StreamingFakePeer(FakePeer):
    """A fake peer that also serves filtered blocks (the Deliver service), like Fabric's."""

    def __init__(self, ledger: FakeLedger, address: str = "peer0.org1:7051") -> None:
        super().__init__(ledger, address)
        # A common.Status to answer every seek with (FORBIDDEN: identity refused).
        self.deliver_refuse: int | None = None
        # Break the stream (peer gone) after sending this many blocks, once.
        self.deliver_break_after: int | None = None
        self.seeks: list[Any] = []

    async def deliver_filtered(self, envelope: Any) -> AsyncIterator[Any]:
        from fabric_protos.common import common_pb2
        from fabric_protos.orderer import ab_pb2
        from fabric_protos.peer import events_pb2

        self._enter("deliver_filtered")
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        _check(envelope.signature, envelope.payload, header.creator)
        channel = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        assert channel.type == common_pb2.DELIVER_SEEK_INFO
        seek = ab_pb2.SeekInfo.FromString(payload.data)
        self.seeks.append(seek)
        if self.deliver_refuse is not None:
            yield events_pb2.DeliverResponse(status=self.deliver_refuse)
            return
        blocks = self.ledger.blocks
        if seek.start.HasField("specified"):
            start = seek.start.specified.number
        else:  # newest: the last committed block, or the first one to come
            start = blocks[-1].number if blocks else self.ledger.first_block
        sent, index = 0, 0
        while True:
            while index < len(blocks):
                block = blocks[index]
                index += 1
                if block.number < start:
                    continue
                if self.deliver_break_after is not None and sent >= self.deliver_break_after:
                    self.deliver_break_after = None
                    raise RpcError(StatusCode.UNAVAILABLE, "peer went away", endpoint=self.address)
                sent += 1
                tx = events_pb2.FilteredTransaction(
                    txid=block.tx_id,
                    type=common_pb2.ENDORSER_TRANSACTION,
                    tx_validation_code=block.valid_code,
                )
                yield events_pb2.DeliverResponse(
                    filtered_block=events_pb2.FilteredBlock(
                        channel_id=channel.channel_id,
                        number=block.number,
                        filtered_transactions=[tx],
                    )
                )
            await asyncio.sleep(0.002)
