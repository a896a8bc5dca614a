"""Fault injection in front of a peer's Gateway transport (the ordering stage only)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from fabric_protos.gateway import gateway_pb2

from gateway.ledger.transport import GatewayTransport, RpcError, StatusCode


class OrderingFault:
    """Shared switch: while ``stalled``, every Submit fails as with all orderers down;
    ``hang`` makes Submit never answer; ``after_submit`` runs after a Submit succeeded."""

    def __init__(self) -> None:
        self.stalled = False
        self.hang = False
        self.refused = 0
        self.after_submit: Callable[[], Awaitable[None]] | None = None

    def wrap(self, transport: GatewayTransport) -> GatewayTransport:
        return FaultyTransport(transport, self)


class FaultyTransport:
    def __init__(self, inner: GatewayTransport, fault: OrderingFault) -> None:
        self._inner = inner
        self._fault = fault

    @property
    def endpoint(self) -> str:
        return self._inner.endpoint

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float
    ) -> gateway_pb2.EvaluateResponse:
        return await self._inner.evaluate(request, timeout=timeout)

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float
    ) -> gateway_pb2.EndorseResponse:
        return await self._inner.endorse(request, timeout=timeout)

    async def submit(
        self, request: gateway_pb2.SubmitRequest, *, timeout: float
    ) -> gateway_pb2.SubmitResponse:
        if self._fault.hang:
            await asyncio.Event().wait()
        if self._fault.stalled:
            self._fault.refused += 1
            # What a Fabric peer's Gateway answers when no orderer can be reached.
            raise RpcError(
                StatusCode.UNAVAILABLE,
                "failed to send transaction to orderer: no orderers could be reached",
                endpoint=self.endpoint,
            )
        response = await self._inner.submit(request, timeout=timeout)
        if self._fault.after_submit is not None:
            await self._fault.after_submit()
        return response

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, *, timeout: float
    ) -> gateway_pb2.CommitStatusResponse:
        return await self._inner.commit_status(request, timeout=timeout)

    def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, *, timeout: float | None
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        return self._inner.chaincode_events(request, timeout=timeout)

    async def close(self) -> None:
        await self._inner.close()


def kill_self() -> None:
    """SIGKILL this process (the crash test's child, after its submit reached the ledger)."""
    os.kill(os.getpid(), signal.SIGKILL)
