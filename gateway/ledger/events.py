"""Chaincode events: a resumable async iterator with a checkpoint.

:class:`ChaincodeEvent`, :class:`Checkpoint` and the request and response
messages are :mod:`gateway.ledger.protocol.events`.

- :class:`EventFilter` — drops what the checkpoint already covers, so a
  peer that resends part of a block never makes the caller see an event twice.

Objects:

- :class:`Checkpointer` — keeps the position in memory; :class:`FileCheckpointer`
  also writes it to a file atomically (write, fsync, rename) on every update.
  After handling an event call ``checkpointer.checkpoint_event(event)``;
  after a restart pass ``checkpointer.checkpoint`` back to resume with no
  event missed and none repeated.
- :class:`ChaincodeEventStream` — the async iterator ``Network.chaincode_events``
  returns. If the peer goes away mid-stream it reconnects (next peer first)
  from the last event it delivered. ``aclose()`` ends it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fabric_protos.gateway import gateway_pb2

from gateway.identity.signing import sha256
from gateway.ledger.client import Client, map_rpc_error
from gateway.ledger.errors import EventStreamError
from gateway.ledger.protocol.events import (
    ChaincodeEvent,
    Checkpoint,
    build_events_request,
    events_of,
)
from gateway.ledger.transport import RpcError, StatusCode


class EventFilter:
    """Guards one stream connection against events the checkpoint already covers.

    The peer itself skips, in the checkpoint's block, every event up to and
    including the checkpoint's transaction (``after_transaction_id``: Fabric's
    Gateway service and the embedded ledger both do). This filter drops what a
    peer may still resend: events of earlier blocks, the checkpoint's own
    transaction, and anything older than what this connection already gave.
    """

    def __init__(self, checkpoint: Checkpoint | None) -> None:
        self._block = checkpoint.block_number if checkpoint else -1
        self._done_block = checkpoint.block_number if checkpoint else -1
        self._done_tx = checkpoint.transaction_id if checkpoint else ""

    def accept(self, event: ChaincodeEvent) -> bool:
        if event.block_number < self._block:
            return False
        if (
            self._done_tx
            and event.block_number == self._done_block
            and event.transaction_id == self._done_tx
        ):
            return False
        self._block = event.block_number
        return True

    def events(self, response: gateway_pb2.ChaincodeEventsResponse) -> list[ChaincodeEvent]:
        """The accepted events of one stream response."""
        return [e for e in events_of(response) if self.accept(e)]


class Checkpointer:
    """The position of a consumer of events, kept in memory."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self._checkpoint = checkpoint

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    def checkpoint_event(self, event: ChaincodeEvent) -> None:
        """Record that ``event`` has been handled."""
        self._set(Checkpoint(event.block_number, event.transaction_id))

    def checkpoint_block(self, block_number: int) -> None:
        """Record that every event up to and including ``block_number`` has been handled."""
        self._set(Checkpoint(block_number + 1))

    def _set(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint


class FileCheckpointer(Checkpointer):
    """A :class:`Checkpointer` persisted to one JSON file, replaced atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        existing = Checkpoint.from_json(self.path.read_text()) if self.path.is_file() else None
        super().__init__(existing)

    def _set(self, checkpoint: Checkpoint) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(checkpoint.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        super()._set(checkpoint)


class ChaincodeEventStream:
    """Async iterator of a chaincode's events; reconnects from where it stopped."""

    def __init__(
        self,
        client: Client,
        *,
        channel_id: str,
        chaincode: str,
        checkpoint: Checkpoint | None,
        max_reconnects: int = 20,
    ) -> None:
        self._client = client
        self._channel_id = channel_id
        self._chaincode = chaincode
        self._position = checkpoint
        self._filter = EventFilter(checkpoint)
        self._max_reconnects = max_reconnects
        self._iterator: AsyncIterator[ChaincodeEvent] | None = None
        self._closed = False

    @property
    def position(self) -> Checkpoint | None:
        """Where this stream would resume: after the last event it delivered."""
        return self._position

    def _signed_request(self) -> gateway_pb2.SignedChaincodeEventsRequest:
        request = build_events_request(
            channel_id=self._channel_id,
            chaincode=self._chaincode,
            identity=self._client.creator,
            checkpoint=self._position,
        )
        signature = self._client.sign_digest(sha256(request), what="chaincode events request")
        return gateway_pb2.SignedChaincodeEventsRequest(request=request, signature=signature)

    async def _run(self) -> AsyncIterator[ChaincodeEvent]:
        failures = 0
        while not self._closed:
            request = self._signed_request()
            # A peer that failed is cooling down at the back of the list.
            transport = self._client.failover.candidates()[0]
            # Each connection may resend the checkpoint's block: filter from our position.
            self._filter = EventFilter(self._position)
            responses = transport.chaincode_events(request, timeout=None)
            try:
                try:
                    async for response in responses:
                        failures = 0
                        for event in self._filter.events(response):
                            self._position = Checkpoint(event.block_number, event.transaction_id)
                            yield event
                finally:
                    # Cancel the peer's stream when we stop, not whenever it is collected.
                    closer = getattr(responses, "aclose", None)
                    if closer is not None:
                        await closer()
            except RpcError as exc:
                if exc.status not in (StatusCode.UNAVAILABLE, StatusCode.CANCELLED) or (
                    failures >= self._max_reconnects
                ):
                    raise map_rpc_error(exc, EventStreamError) from None
                self._client.failover.mark_down(transport)
                failures += 1
                await asyncio.sleep(min(0.1 * failures, 1.0))
                continue
            # The peer ended the stream without an error: resume from where we are.
            failures += 1
            if failures > self._max_reconnects:
                return
            await asyncio.sleep(min(0.1 * failures, 1.0))

    def __aiter__(self) -> ChaincodeEventStream:
        return self

    async def __anext__(self) -> ChaincodeEvent:
        if self._iterator is None:
            self._iterator = self._run()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release its call."""
        self._closed = True
        if self._iterator is not None:
            closer: Any = self._iterator
            await closer.aclose()

    async def __aenter__(self) -> ChaincodeEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
