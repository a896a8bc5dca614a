"""The chaincode-as-a-service gRPC server.

Defect (c): the shim's ``start()`` passes its TLS arguments down as None and
never reads the environment, so a peer configured for TLS cannot connect.
:func:`tls_from_env` reads the chaincode-server variables Fabric's own shims
use, and :func:`serve` builds the server itself:

- ``CHAINCODE_SERVER_ADDRESS`` (``host:port``) and ``CHAINCODE_ID`` (the package id);
- ``CHAINCODE_TLS_DISABLED``: ``true`` (the default, as in the Go shim) or ``false``;
- ``CHAINCODE_TLS_KEY``, ``CHAINCODE_TLS_CERT``: file paths of the server's PEM
  key and certificate, required when TLS is on;
- ``CHAINCODE_CLIENT_CA_CERT``: file path of the PEM CA that signs the peers'
  client certificates; when set, the server requires client certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from chaincode.runtime.contract import Contract
from chaincode.runtime.dispatch import ContractChaincode
from chaincode.runtime.peer_stream import PeerStreamHandler

log = logging.getLogger("chaincode.runtime")


class ServerConfigError(Exception):
    """The environment does not describe a server that can start."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    key: bytes
    cert: bytes
    client_ca: bytes | None


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    address: str
    chaincode_id: str
    tls: TlsFiles | None


def _read(env: Mapping[str, str], name: str) -> bytes:
    path = env.get(name, "")
    if not path:
        raise ServerConfigError(f"{name} must name a PEM file when TLS is enabled")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ServerConfigError(f"{name}={path} cannot be read: {exc.strerror}") from exc


def tls_from_env(env: Mapping[str, str]) -> TlsFiles | None:
    """The TLS material named by the environment, or None when TLS is disabled."""
    disabled = env.get("CHAINCODE_TLS_DISABLED", "true").strip().lower()
    if disabled not in {"true", "false", "1", "0", "yes", "no"}:
        raise ServerConfigError(f"CHAINCODE_TLS_DISABLED must be true or false, not {disabled!r}")
    if disabled in {"true", "1", "yes"}:
        return None
    key = _read(env, "CHAINCODE_TLS_KEY")
    cert = _read(env, "CHAINCODE_TLS_CERT")
    client_ca = None
    if env.get("CHAINCODE_CLIENT_CA_CERT"):
        client_ca = _read(env, "CHAINCODE_CLIENT_CA_CERT")
    return TlsFiles(key=key, cert=cert, client_ca=client_ca)


def config_from_env(env: Mapping[str, str]) -> ServerConfig:
    address = env.get("CHAINCODE_SERVER_ADDRESS", "")
    chaincode_id = env.get("CHAINCODE_ID", "")
    if not address or ":" not in address:
        raise ServerConfigError("CHAINCODE_SERVER_ADDRESS must be host:port, e.g. 127.0.0.1:9999")
    if not chaincode_id:
        raise ServerConfigError("CHAINCODE_ID must be the chaincode package id")
    return ServerConfig(address=address, chaincode_id=chaincode_id, tls=tls_from_env(env))


def server_credentials(tls: TlsFiles) -> Any:
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


class ChaincodeService(chaincode_shim_pb2_grpc.ChaincodeServicer):  # type: ignore[misc]
    """``protos.Chaincode/Connect``: one :class:`PeerStreamHandler` per peer stream."""

    def __init__(self, chaincode_id: str, chaincode: ContractChaincode) -> None:
        self._chaincode_id = chaincode_id
        self._chaincode = chaincode

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        log.info("peer connected from %s", context.peer())
        handler = PeerStreamHandler(self._chaincode_id, self._chaincode)
        with contextlib.suppress(asyncio.CancelledError):
            await handler.chat_with_peer(request_iterator, context)


async def start_server(
    contracts: Sequence[type[Contract] | Contract], config: ServerConfig
) -> tuple[Any, int]:
    """Build and start the gRPC server; returns it and the port it bound."""
    chaincode = ContractChaincode(contracts)
    server = grpc.aio.server()
    chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(
        ChaincodeService(config.chaincode_id, chaincode), server
    )
    try:
        if config.tls is None:
            port = server.add_insecure_port(config.address)
        else:
            port = server.add_secure_port(config.address, server_credentials(config.tls))
    except RuntimeError as exc:
        raise ServerConfigError(f"cannot listen on {config.address}: {exc}") from exc
    if port == 0:
        raise ServerConfigError(f"cannot listen on {config.address}")
    await server.start()
    log.info(
        "chaincode %s serving %s on %s (TLS %s)",
        config.chaincode_id,
        ", ".join(sorted(chaincode.routes)),
        config.address,
        "off" if config.tls is None else ("mutual" if config.tls.client_ca else "on"),
    )
    return server, port


async def serve(contracts: Sequence[type[Contract] | Contract], config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop with a short grace period."""
    server, _ = await start_server(contracts, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(server.wait_for_termination())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping chaincode server")
    await server.stop(2)
    for task in (waiter, stopper):
        task.cancel()
