"""The chaincode side of the peer's ``Chaincode.Connect`` stream.

:class:`PeerStreamHandler` subclasses the shim's ``Handler`` (which keeps its
state-call plumbing: GET_STATE, PUT_STATE, range queries, each answered by a
RESPONSE matched on channel + tx id) and corrects two defects:

- (a) events: the shim's stub records ``set_event`` but its handler never puts
  the event on the COMPLETED message, so the peer sees none. Here the
  COMPLETED message carries the stub's event in ``chaincode_event`` (Fabric
  keeps one event per transaction; the last one set wins, as in the Go shim),
  and only for a successful response.
- (b) concurrency: transactions run as concurrent tasks and each writes to the
  one gRPC stream; overlapping ``context.write`` calls lose messages. Every
  write here goes through :class:`SerialisedWriter`, one at a time.

It also answers a transaction whose handling raises with an ERROR message
(the shim sends nothing and the peer waits until its execute timeout), and it
does not log message payloads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterable
from typing import Any

from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2

from chaincode.runtime._shim import handler as shim_handler
from chaincode.runtime._shim import msg_queue_handler
from chaincode.runtime._shim import stub as shim_stub

log = logging.getLogger("chaincode.runtime")
Message = chaincode_shim_pb2.ChaincodeMessage
ERROR_THRESHOLD = 400


class SerialisedWriter:
    """Wraps a stream context so that at most one ``write`` is in flight."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._lock = asyncio.Lock()

    async def write(self, message: Any) -> None:
        async with self._lock:
            await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def completed_message(request: Any, response: Any, event: Any | None) -> Any:
    """The COMPLETED message for ``request``: the response, and the event if it succeeded."""
    message = Message(
        type=Message.COMPLETED,
        payload=response.SerializeToString(),
        txid=request.txid,
        channel_id=request.channel_id,
    )
    if event is not None and response.status < ERROR_THRESHOLD:
        message.chaincode_event.CopyFrom(event)
    return message


class PeerStreamHandler(shim_handler.Handler):  # type: ignore[misc]
    """One peer connection: registration, then transactions and their state calls."""

    async def chat_with_peer(self, stream: AsyncIterable[Any], context: Any) -> None:
        self.state = shim_handler.STATES.CREATED
        self.context = SerialisedWriter(context)
        # The queue handler captures handler.context at construction: build it after.
        self.msg_queue_handler = msg_queue_handler.MsgQueueHandler(self)

        register = Message(type=Message.REGISTER, payload=self.chaincode_id.SerializeToString())
        register.timestamp.FromDatetime(dt.datetime.now(dt.UTC).replace(tzinfo=None))
        await self.context.write(register)

        async for message in stream:
            self._track_task(self.handle_message(message))
        if self._pending_tasks:
            await asyncio.gather(*self._pending_tasks, return_exceptions=True)
        log.info("peer closed the chaincode stream")

    async def handle_message(self, msg: Any) -> None:
        if msg.type == Message.KEEPALIVE:
            return
        # The shim's own handle_message logs a warning for every message: route here instead.
        previous = self.state
        states = shim_handler.STATES
        if self.state == states.READY:
            await self.handle_message_ready(msg)
        elif self.state == states.ESTABLISHED:
            await self.handle_message_established(msg)
        elif self.state == states.CREATED:
            await self.handle_message_created(msg)
        if self.state != previous:
            log.info("peer stream %s -> %s", previous, self.state)

    async def handle_stub_interaction(self, msg: Any, action: str = "Invoke") -> None:
        try:
            cc_input = chaincode_pb2.ChaincodeInput.FromString(msg.payload)
            stub = shim_stub.ChaincodeStub(self, msg.channel_id, msg.txid, cc_input, msg.proposal)
            if action.lower() == "init":
                response = await self.chaincode.init(stub)
            else:
                response = await self.chaincode.invoke(stub)
            if response is None or not response.status:
                raise RuntimeError("the chaincode returned no response")
            events = stub.get_events()
            reply = completed_message(msg, response, events[-1] if events else None)
        except Exception as exc:
            log.exception("transaction %s could not be handled", msg.txid[:16])
            reply = Message(
                type=Message.ERROR,
                payload=f"chaincode could not handle the tx: {type(exc).__name__}".encode(),
                txid=msg.txid,
                channel_id=msg.channel_id,
            )
        await self.context.write(reply)
