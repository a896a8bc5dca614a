"""The embedded ledger served over gRPC as a ``gateway.Gateway`` service, on loopback.

So any Fabric Gateway client — the official Node one included — can talk to it.
One :class:`GatewayServer` is one org's peer endpoint (its gateway org decides
which peer evaluates and endorses first). Failures are sent as a Fabric peer
sends them: the gRPC status and message, and the per-peer ``gateway.ErrorDetail``
entries in the ``grpc-status-details-bin`` trailer.

    server = GatewayServer(ledger, "Org1MSP")
    port = await server.start()            # 127.0.0.1, a free port unless given
    ...
    await server.stop()

Plain-text gRPC by default; pass ``tls=(certificate_pem, private_key_pem)`` for TLS.

:class:`ServedLedger` serves every org's peer and announces the addresses in
``<ledger folder>/endpoints.json``; :func:`served_endpoints` reads them back
(None when no live process serves that folder), so a second process reaches
the ledger its owner holds open.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc

from gateway.ledger.embedded.engine import EmbeddedLedger
from gateway.ledger.embedded.transport import EmbeddedTransport
from gateway.ledger.rpc_status import encode_error_details
from gateway.ledger.transport import RpcError

T = TypeVar("T")
_LOOPBACK = "127.0.0.1"


class _Servicer(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    def __init__(self, transport: EmbeddedTransport) -> None:
        self._transport = transport

    @staticmethod
    async def _answer(context: Any, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except RpcError as exc:
            await _abort(context, exc)
            raise  # unreachable: abort raises

    @staticmethod
    def _deadline(context: Any) -> float | None:
        remaining = context.time_remaining()
        return None if remaining is None else max(float(remaining), 0.001)

    async def Evaluate(self, request: Any, context: Any) -> Any:
        timeout = self._deadline(context) or 3600.0
        return await self._answer(
            context, lambda: self._transport.evaluate(request, timeout=timeout)
        )

    async def Endorse(self, request: Any, context: Any) -> Any:
        timeout = self._deadline(context) or 3600.0
        return await self._answer(
            context, lambda: self._transport.endorse(request, timeout=timeout)
        )

    async def Submit(self, request: Any, context: Any) -> Any:
        timeout = self._deadline(context) or 3600.0
        return await self._answer(context, lambda: self._transport.submit(request, timeout=timeout))

    async def CommitStatus(self, request: Any, context: Any) -> Any:
        timeout = self._deadline(context) or 3600.0
        return await self._answer(
            context, lambda: self._transport.commit_status(request, timeout=timeout)
        )

    async def ChaincodeEvents(
        self, request: Any, context: Any
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        stream = self._transport.chaincode_events(request, timeout=self._deadline(context))
        try:
            async for response in stream:
                yield response
        except RpcError as exc:
            await _abort(context, exc)


async def _abort(context: Any, exc: RpcError) -> None:
    trailer = encode_error_details(exc.status, exc.message, exc.details)
    await context.abort(
        grpc.StatusCode[exc.status.name],
        exc.message,
        trailing_metadata=(("grpc-status-details-bin", trailer),),
    )


class GatewayServer:
    """One org's embedded peer Gateway service on a loopback port."""

    def __init__(
        self,
        ledger: EmbeddedLedger,
        msp_id: str,
        *,
        port: int = 0,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        self._transport = EmbeddedTransport(ledger, msp_id)
        self._port = port
        self._tls = tls
        self._server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self) -> int:
        """Listen on 127.0.0.1; returns the port."""
        max_bytes = self._transport.max_recv_bytes
        server = grpc.aio.server(
            options=[
                # The engine applies the peer's receive limit itself, with the peer's message.
                ("grpc.max_receive_message_length", max_bytes + 1024 * 1024),
                ("grpc.max_send_message_length", max_bytes),
            ]
        )
        gateway_pb2_grpc.add_GatewayServicer_to_server(_Servicer(self._transport), server)
        target = f"{_LOOPBACK}:{self._port}"
        if self._tls is None:
            port = server.add_insecure_port(target)
        else:
            certificate, key = self._tls
            credentials = grpc.ssl_server_credentials([(key, certificate)])
            port = server.add_secure_port(target, credentials)
        await server.start()
        self._server = server
        self.address = f"{_LOOPBACK}:{port}"
        return int(port)

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None


ENDPOINTS_FILE = "endpoints.json"


class ServedLedger:
    """Every org's embedded peer served on loopback, announced in ``<root>/endpoints.json``.

    The process that owns the embedded ledger (it holds the folder's lock) starts
    this so other processes — the CLI, an auditor's ``verify`` — reach the same
    ledger over gRPC (:func:`served_endpoints`, then any Gateway client).
    """

    def __init__(self, ledger: EmbeddedLedger) -> None:
        self.ledger = ledger
        self.servers = {msp_id: GatewayServer(ledger, msp_id) for msp_id in ledger.peers}

    async def start(self) -> dict[str, str]:
        """Start the servers and write the endpoints file; ``{msp_id: "127.0.0.1:port"}``."""
        for server in self.servers.values():
            await server.start()
        endpoints = {msp_id: s.address for msp_id, s in self.servers.items()}
        body = json.dumps({"pid": os.getpid(), "endpoints": endpoints}, sort_keys=True)
        path = self.ledger.root / ENDPOINTS_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(body)
        os.replace(tmp, path)
        return endpoints

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.ledger.root / ENDPOINTS_FILE).unlink()
        for server in self.servers.values():
            await server.stop()


def served_endpoints(root: Path) -> dict[str, str] | None:
    """``{msp_id: address}`` of the embedded ledger in ``root`` if a live process serves it."""
    try:
        doc = json.loads((root / ENDPOINTS_FILE).read_text())
        pid = int(doc["pid"])
        endpoints = {str(k): str(v) for k, v in doc["endpoints"].items()}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale file left by a killed process
    except PermissionError:
        pass  # alive, owned by someone else
    return endpoints
