"""In-process :class:`~gateway.ledger.transport.GatewayTransport` to the embedded ledger.

Each :class:`EmbeddedTransport` is one org's peer Gateway endpoint
(``embedded:Org1MSP``). Requests cross it as bytes, exactly as over gRPC:
each request is serialized, checked against the peer's receive limit
(``RESOURCE_EXHAUSTED "grpc: received message larger than max (N vs. M)"``)
and parsed again, and each response is serialized and parsed back, so
nothing is shared between client and ledger that gRPC would not carry.
Deadlines end a call with ``DEADLINE_EXCEEDED "Deadline Exceeded"``, as
grpcio reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

from fabric_protos.gateway import gateway_pb2

from gateway.ledger.embedded.engine import EmbeddedLedger
from gateway.ledger.embedded.errors import EmbeddedLedgerError
from gateway.ledger.transport import RpcError, StatusCode

M = TypeVar("M")


class EmbeddedTransport:
    """The Gateway service of one org's embedded peer."""

    def __init__(self, ledger: EmbeddedLedger, msp_id: str) -> None:
        if msp_id not in ledger.peers:
            raise ValueError(f"{msp_id} is not an org of this embedded ledger")
        self._ledger = ledger
        self._msp_id = msp_id

    @property
    def endpoint(self) -> str:
        return f"embedded:{self._msp_id}"

    @property
    def msp_id(self) -> str:
        return self._msp_id

    @property
    def max_recv_bytes(self) -> int:
        """The largest request this peer accepts (Fabric's ``peer.maxRecvMsgSize``)."""
        return self._ledger.config.max_recv_bytes

    def _wire(self, request: Any) -> Any:
        data = request.SerializeToString()
        limit = self._ledger.config.max_recv_bytes
        if len(data) > limit:
            raise self._error(
                StatusCode.RESOURCE_EXHAUSTED,
                f"grpc: received message larger than max ({len(data)} vs. {limit})",
            )
        return type(request).FromString(data)

    def _error(self, status: StatusCode, message: str) -> RpcError:
        return RpcError(status, message, endpoint=self.endpoint)

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """Errors as a gRPC client sees them: RpcError with this endpoint's name."""
        try:
            yield
        except TimeoutError:
            raise self._error(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except RpcError as exc:
            raise RpcError(exc.status, exc.message, exc.details, endpoint=self.endpoint) from None
        except EmbeddedLedgerError as exc:
            raise self._error(StatusCode.UNAVAILABLE, exc.message) from None

    async def _call(self, call: Awaitable[M], timeout: float | None) -> M:
        with self._mapped():
            result = await asyncio.wait_for(call, timeout) if timeout is not None else await call
        return _round_trip(result)

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float
    ) -> gateway_pb2.EvaluateResponse:
        wire = self._wire(request)
        return await self._call(self._ledger.evaluate(wire, gateway_msp=self._msp_id), timeout)

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float
    ) -> gateway_pb2.EndorseResponse:
        wire = self._wire(request)
        return await self._call(self._ledger.endorse(wire, gateway_msp=self._msp_id), timeout)

    async def submit(
        self, request: gateway_pb2.SubmitRequest, *, timeout: float
    ) -> gateway_pb2.SubmitResponse:
        wire = self._wire(request)
        return await self._call(self._ledger.submit(wire), timeout)

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, *, timeout: float
    ) -> gateway_pb2.CommitStatusResponse:
        wire = self._wire(request)
        return await self._call(self._ledger.commit_status(wire), timeout)

    async def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, *, timeout: float | None
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        wire = self._wire(request)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with self._mapped():
            stream = await self._ledger.chaincode_events(wire)
        iterator = stream.__aiter__()
        try:
            while True:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    raise self._error(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
                try:
                    item = await self._call(iterator.__anext__(), left)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    async def close(self) -> None:
        """Nothing to release: the ledger outlives its transports."""


def _round_trip(message: M) -> M:
    """A copy made the way gRPC makes one: serialized and parsed."""
    return type(message).FromString(message.SerializeToString())  # type: ignore[attr-defined, no-any-return]
