"""Client Gateways over the embedded ledger (the bridge between the client and the peer).

- :func:`embedded_gateway` — a Gateway for a member's MSP folder over the
  embedded peers of an :class:`~gateway.ledger.embedded.EmbeddedLedger` this
  process holds, own org first (its own peer is the gateway peer, as with a
  real network);
- ``async with embedded_session(settings) as ledger`` opens the ledger the
  settings describe for this process (and serves it on loopback); another
  process then uses :func:`served_gateway` to reach it over gRPC.

:func:`gateway.ledger.connection.open_ledger` uses these for a process's own
connection; tests and benchmarks that hold a ledger use them directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.config import Settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.msp import load_msp
from gateway.identity.signing import Signer
from gateway.ledger.client import Timeouts
from gateway.ledger.embedded.engine import EmbeddedLedger
from gateway.ledger.embedded.errors import LedgerClosed
from gateway.ledger.embedded.server import ServedLedger, served_endpoints
from gateway.ledger.embedded.settings import config_from_settings
from gateway.ledger.embedded.transport import EmbeddedTransport
from gateway.ledger.endpoints import Endpoint
from gateway.ledger.gateway import Gateway
from gateway.ledger.grpc_transport import GrpcTransport


def embedded_gateway(
    ledger: EmbeddedLedger,
    msp_dir: str | Path,
    *,
    org: str,
    signer: Signer | None = None,
    offline: bool = False,
    timeouts: Timeouts | None = None,
) -> Gateway:
    """A Gateway for the member in ``msp_dir`` of ``org`` (``Org1`` or ``Org1MSP``).

    Its transports are the embedded peers of every org, its own org first (so
    its own peer is the gateway peer, as with a real network).
    """
    msp_id = ledger.ca.msp_id(org)
    folder = load_msp(msp_dir, msp_id, require_key=signer is None and not offline)
    if signer is None and not offline:
        signer = folder.signer()
    order = sorted(ledger.peers, key=lambda m: m != msp_id)
    return Gateway(
        folder.identity,
        [EmbeddedTransport(ledger, m) for m in order],
        signer=None if offline else signer,
        timeouts=timeouts,
    )


@contextlib.asynccontextmanager
async def embedded_session(
    settings: Settings, *, serve: bool = True
) -> AsyncIterator[EmbeddedLedger]:
    """Open the embedded ledger ``settings`` describe for this process, and close it after.

    With ``serve`` its peers are also served on loopback gRPC and announced in the
    ledger folder, so other processes reach it with :func:`served_gateway`.
    """
    ledger = EmbeddedLedger.open(config_from_settings(settings))
    served = ServedLedger(ledger) if serve else None
    try:
        if served is not None:
            await served.start()
        yield ledger
    finally:
        if served is not None:
            await served.stop()
        await ledger.close()


def served_gateway(
    settings: Settings,
    msp_dir: str | Path,
    *,
    org: str,
    signer: Signer | None = None,
    timeouts: Timeouts | None = None,
) -> Gateway:
    """A Gateway over loopback gRPC to the embedded ledger another process holds open.

    Raises :class:`~gateway.ledger.embedded.errors.LedgerClosed` when no live
    process serves ``settings.embedded_dir``.
    """
    endpoints = served_endpoints(settings.embedded_dir)
    if endpoints is None:
        raise LedgerClosed(
            f"no process serves the embedded ledger in {settings.embedded_dir}: start the "
            "gateway (it serves it), or open the ledger in this process"
        )
    msp_id = EmbeddedCA.org_name(org) + "MSP"
    folder = load_msp(msp_dir, msp_id, require_key=signer is None)
    order = sorted(endpoints, key=lambda m: m != msp_id)
    return Gateway(
        folder.identity,
        [GrpcTransport(Endpoint(endpoints[m], m)) for m in order],
        signer=signer or folder.signer(),
        timeouts=timeouts,
    )
