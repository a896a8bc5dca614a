"""gRPC transport to a Fabric peer's Gateway service (``grpc.aio``).

:class:`GrpcTransport` implements :class:`~gateway.ledger.transport.GatewayTransport`
over one HTTP/2 connection per peer, opened on first use and reused by every
call and every Gateway that shares the transport. The same connection carries
the peer's Deliver service for filtered blocks (``deliver_filtered``), from
which :mod:`gateway.ledger.commit_watch` learns commit statuses, and for full
blocks (``deliver_blocks``), from which :mod:`gateway.ledger.config_watch`
reads the channel configuration. TLS trusts the given CA
bundle (the org's TLS CA); ``server_name_override`` is the name the peer's
certificate carries when it is dialled by another name. Every gRPC failure
becomes :class:`~gateway.ledger.transport.RpcError`, with the per-peer
details Fabric attaches (``gateway.ErrorDetail``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import events_pb2, events_pb2_grpc

from gateway.ledger.endpoints import Endpoint
from gateway.ledger.rpc_status import STATUS_DETAILS_KEY, decode_error_details
from gateway.ledger.transport import RpcError, StatusCode

_OPTIONS: tuple[tuple[str, Any], ...] = (
    # A peer that was down should be retried within seconds, not gRPC's default two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Fabric peers refuse pings closer than 60 s apart (peer.keepalive.minInterval) and
    # drop the connection of a client that sends them: stay well above it.
    ("grpc.keepalive_time_ms", 120_000),
    ("grpc.max_receive_message_length", 100 * 1024 * 1024),
    ("grpc.max_send_message_length", 100 * 1024 * 1024),
)


def _rpc_error(exc: grpc.aio.AioRpcError, endpoint: str) -> RpcError:
    try:
        status = StatusCode(exc.code().value[0])
    except (ValueError, AttributeError, IndexError):
        status = StatusCode.UNKNOWN
    details: tuple[Any, ...] = ()
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            details = decode_error_details(value)
    return RpcError(status, exc.details() or "", details, endpoint=endpoint)


class GrpcTransport:
    """A peer's Gateway service over gRPC (TLS unless no root certificates are given)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._deliver: Any = None

    @property
    def endpoint(self) -> str:
        return self._endpoint.address

    @property
    def msp_id(self) -> str:
        return self._endpoint.msp_id

    def _get_stub(self) -> Any:
        if self._stub is None:
            options = list(_OPTIONS)
            if self._endpoint.server_name_override:
                options.append(
                    ("grpc.ssl_target_name_override", self._endpoint.server_name_override)
                )
            if self._endpoint.tls_root_certs is None:
                self._channel = grpc.aio.insecure_channel(self._endpoint.address, options=options)
            else:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=self._endpoint.tls_root_certs
                )
                self._channel = grpc.aio.secure_channel(
                    self._endpoint.address, credentials, options=options
                )
            self._stub = gateway_pb2_grpc.GatewayStub(self._channel)
            self._deliver = events_pb2_grpc.DeliverStub(self._channel)
        return self._stub

    def _deliver_stub(self) -> Any:
        self._get_stub()
        return self._deliver

    async def _unary(self, method: str, request: Any, timeout: float) -> Any:
        call = getattr(self._get_stub(), method)
        try:
            return await call(request, timeout=max(timeout, 0.001))
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, self.endpoint) from None

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float
    ) -> gateway_pb2.EvaluateResponse:
        return await self._unary("Evaluate", request, timeout)

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float
    ) -> gateway_pb2.EndorseResponse:
        return await self._unary("Endorse", request, timeout)

    async def submit(
        self, request: gateway_pb2.SubmitRequest, *, timeout: float
    ) -> gateway_pb2.SubmitResponse:
        return await self._unary("Submit", request, timeout)

    async def commit_status(
        self, request: gateway_pb2.SignedCommitStatusRequest, *, timeout: float
    ) -> gateway_pb2.CommitStatusResponse:
        return await self._unary("CommitStatus", request, timeout)

    async def _stream(self, start: Callable[[], Any]) -> AsyncIterator[Any]:
        # The call starts on first iteration, so an iterator never used holds nothing.
        call = start()
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, self.endpoint) from None
        finally:
            call.cancel()

    def chaincode_events(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, *, timeout: float | None
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        return self._stream(lambda: self._get_stub().ChaincodeEvents(request, timeout=timeout))

    def deliver_filtered(
        self, envelope: common_pb2.Envelope
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        """The peer's filtered blocks for a signed seek envelope (Deliver service)."""
        return self._stream(lambda: self._deliver_stub().DeliverFiltered(iter([envelope])))

    def deliver_blocks(
        self, envelope: common_pb2.Envelope
    ) -> AsyncIterator[events_pb2.DeliverResponse]:
        """The peer's full blocks for a signed seek envelope (Deliver service)."""
        return self._stream(lambda: self._deliver_stub().Deliver(iter([envelope])))

    async def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        self._deliver = None
        if channel is not None:
            await channel.close()
