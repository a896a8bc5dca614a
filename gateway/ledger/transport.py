"""The one seam between the Fabric client and whatever answers it.

A transport carries the ``gateway.Gateway`` service's request and response
messages, unchanged. Two implementations exist: gRPC to a Fabric peer's
Gateway service (``grpc_transport``) and in-process calls to the embedded
ledger (``embedded``). Both raise :class:`RpcError` with the gRPC status a
Fabric peer would give, so the client maps failures to typed errors in one
place, whatever the ledger.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from typing import Protocol

from fabric_protos.gateway import gateway_pb2


class StatusCode(enum.IntEnum):
    """gRPC status codes (numerically identical to ``grpc.StatusCode`` values)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


@dataclasses.dataclass(frozen=True)
class PeerErrorDetail:
    """One peer's or orderer's part of a failed call (``gateway.ErrorDetail``)."""

    address: str
    msp_id: str
    message: str


class RpcError(Exception):
    """A call failed with a gRPC status, as the peer reported it."""

    def __init__(
        self,
        status: StatusCode,
        message: str,
        details: tuple[PeerErrorDetail, ...] = (),
        *,
        endpoint: str = "",
    ) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message
        self.details = details
        self.endpoint = endpoint


class GatewayTransport(Protocol):
    """What the client needs from a peer's Gateway service.

    ``timeout`` is the call's deadline in seconds; ``None`` means no deadline
    (only for the event stream, which is long-lived by design).
    """

    @property
    def endpoint(self) -> str:
        """A name for logs and errors: ``host:port`` or ``embedded:Org1MSP``."""
        ...

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float
    ) -> gateway_pb2.EvaluateResponse: ...

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float
    ) -> gateway_pb2.EndorseResponse: ...

    async def submit(
        self, request: gateway_pb2.SubmitRequest, *, timeout: float
    ) -> gateway_pb2.SubmitResponse: ...

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, *, timeout: float
    ) -> gateway_pb2.CommitStatusResponse: ...

    def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, *, timeout: float | None
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]: ...

    async def close(self) -> None: ...
