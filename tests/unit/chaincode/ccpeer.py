"""A fake Fabric peer for the chaincode side of ``protos.Chaincode/Connect``.

It speaks the shim protocol as a peer does: waits for REGISTER, answers
REGISTERED and READY, sends TRANSACTION messages carrying a signed proposal,
answers GET_STATE / PUT_STATE / DEL_STATE / GET_STATE_BY_RANGE with RESPONSE,
and resolves each transaction on COMPLETED or ERROR. Two transports:
:class:`LoopbackPeer` (in memory, drives a handler directly, and records
overlapping writes) and :class:`GrpcPeer` (a real gRPC client).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
)

Message = chaincode_shim_pb2.ChaincodeMessage


def transaction_message(
    function: str,
    args: list[str],
    creator: dict[str, Any],
    tx_id: str,
    channel: str,
    when: dt.datetime,
) -> Any:
    cc_input = chaincode_pb2.ChaincodeInput(args=[a.encode() for a in [function, *args]])
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=tx_id
    )
    channel_header.timestamp.FromDatetime(when)
    sid = identities_pb2.SerializedIdentity(mspid=creator["mspid"], id_bytes=creator["idBytes"])
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=sid.SerializeToString(), nonce=b"n" * 24
        ).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(input=cc_input)
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(),
        payload=proposal_pb2.ChaincodeProposalPayload(
            input=spec.SerializeToString()
        ).SerializeToString(),
    )
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=proposal.SerializeToString(), signature=b"s"
    )
    return Message(
        type=Message.TRANSACTION,
        payload=cc_input.SerializeToString(),
        txid=tx_id,
        channel_id=channel,
        proposal=signed,
    )


class PeerLogic:
    """State and the replies a peer sends to the chaincode's requests."""

    def __init__(self, channel: str = "anchorline") -> None:
        self.channel = channel
        self.state: dict[str, bytes] = {}
        self.pending: dict[str, asyncio.Future[Any]] = {}
        self.writes: dict[str, dict[str, bytes | None]] = {}
        self.registered: Any = None
        self._ids = itertools.count(1)
        self.unexpected: list[Any] = []

    def new_tx(self) -> str:
        tx_id = f"{next(self._ids):064x}"
        self.pending[tx_id] = asyncio.get_running_loop().create_future()
        self.writes[tx_id] = {}
        return tx_id

    def react(self, msg: Any) -> list[Any]:
        """The messages the peer sends back for one chaincode message."""
        t = msg.type
        if t == Message.REGISTER:
            self.registered = msg
            return [Message(type=Message.REGISTERED), Message(type=Message.READY)]
        reply = Message(type=Message.RESPONSE, txid=msg.txid, channel_id=msg.channel_id)
        if t == Message.GET_STATE:
            req = chaincode_shim_pb2.GetState.FromString(msg.payload)
            reply.payload = self.state.get(req.key, b"")
            return [reply]
        if t == Message.PUT_STATE:
            req = chaincode_shim_pb2.PutState.FromString(msg.payload)
            self.writes[msg.txid][req.key] = req.value
            return [reply]
        if t == Message.DEL_STATE:
            req = chaincode_shim_pb2.DelState.FromString(msg.payload)
            self.writes[msg.txid][req.key] = None
            return [reply]
        if t == Message.GET_STATE_BY_RANGE:
            req = chaincode_shim_pb2.GetStateByRange.FromString(msg.payload)
            results = [
                chaincode_shim_pb2.QueryResultBytes(
                    resultBytes=kv_query_result_pb2.KV(key=k, value=v).SerializeToString()
                )
                for k, v in sorted(self.state.items())
                if req.startKey <= k < req.endKey
            ]
            reply.payload = chaincode_shim_pb2.QueryResponse(
                results=results, has_more=False, id="q1"
            ).SerializeToString()
            return [reply]
        if t == Message.QUERY_STATE_CLOSE:
            return [reply]
        if t in (Message.COMPLETED, Message.ERROR):
            future = self.pending.pop(msg.txid, None)
            if future is None or future.done():
                self.unexpected.append(msg)
                return []
            if t == Message.COMPLETED:
                from fabric_protos.peer import proposal_response_pb2

                response = proposal_response_pb2.Response.FromString(msg.payload)
                if response.status < 400:
                    for key, value in self.writes.pop(msg.txid).items():
                        if value is None:
                            self.state.pop(key, None)
                        else:
                            self.state[key] = value
            future.set_result(msg)
            return []
        self.unexpected.append(msg)
        return []


class _QueueStream:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> _QueueStream:
        return self

    async def __anext__(self) -> Any:
        msg = await self.queue.get()
        if msg is None:
            raise StopAsyncIteration
        return msg


class LoopbackPeer:
    """Drives a shim ``Handler`` in memory; ``max_concurrent_writes`` shows overlap."""

    def __init__(self, logic: PeerLogic | None = None) -> None:
        self.logic = logic or PeerLogic()
        self.stream = _QueueStream()
        self.in_flight = 0
        self.max_concurrent_writes = 0

    # The handler's "context": its write is a stream write that takes a moment.
    async def write(self, msg: Any) -> None:
        self.in_flight += 1
        self.max_concurrent_writes = max(self.max_concurrent_writes, self.in_flight)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        for reply in self.logic.react(msg):
            self.stream.queue.put_nowait(reply)

    def send(self, msg: Any) -> None:
        self.stream.queue.put_nowait(msg)

    def close(self) -> None:
        self.stream.queue.put_nowait(None)


class GrpcPeer:
    """A peer connected to a chaincode server over real gRPC."""

    def __init__(self, target: str, credentials: Any = None, logic: PeerLogic | None = None):
        self.logic = logic or PeerLogic()
        self.target = target
        self.credentials = credentials
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GrpcPeer:
        if self.credentials is None:
            self.channel = grpc.aio.insecure_channel(self.target)
        else:
            self.channel = grpc.aio.secure_channel(
                self.target,
                self.credentials,
                options=[("grpc.ssl_target_name_override", "localhost")],
            )
        self.call = chaincode_shim_pb2_grpc.ChaincodeStub(self.channel).Connect()
        first = await asyncio.wait_for(self.call.read(), 5)
        for reply in self.logic.react(first):
            await self.call.write(reply)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            msg = await self.call.read()
            if msg is grpc.aio.EOF:
                return
            for reply in self.logic.react(msg):
                async with self._lock:
                    await self.call.write(reply)

    async def invoke(
        self, function: str, args: list[str], creator: dict[str, Any], when: dt.datetime
    ) -> Any:
        tx_id = self.logic.new_tx()
        future = self.logic.pending[tx_id]
        msg = transaction_message(function, args, creator, tx_id, self.logic.channel, when)
        async with self._lock:
            await self.call.write(msg)
        return await future

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.call.cancel()
        await self.channel.close()
