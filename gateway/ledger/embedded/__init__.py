"""The embedded ledger: Fabric's peer, orderer and Gateway semantics in one process.

Public API:

- :class:`EmbeddedConfig`, :class:`EmbeddedLedger` (``EmbeddedLedger.open(config)``,
  ``await ledger.close()``) — see :mod:`gateway.ledger.embedded.engine`;
- :class:`EmbeddedTransport` — the in-process ``GatewayTransport`` for one org's
  peer (``EmbeddedTransport(ledger, "Org1MSP")``), so the Fabric client runs
  unchanged against the embedded ledger;
- :func:`config_from_settings` — the configuration the project's settings describe;
  :func:`embedded_ca` — its built-in CA (``embedded_ca(settings).enroll(org, name,
  role) -> Path`` and ``.revoke(org, name)``, for ``anchorline network enroll/revoke``);
- a client ``Gateway`` over it: :func:`gateway.ledger.embedded_client.embedded_gateway`
  (own org first), ``embedded_session(settings)`` (open and serve the ledger for a
  process), ``served_gateway(settings, msp_dir, org=...)`` (reach it from another);
  :func:`gateway.ledger.connection.open_ledger` opens it for a process from the settings;
- :mod:`~gateway.ledger.embedded.server` — ``GatewayServer`` (one org's peer as a
  ``gateway.Gateway`` gRPC service on 127.0.0.1) and ``ServedLedger`` (all of them,
  announced in ``<folder>/endpoints.json``).

Modules: ``engine`` (Gateway service, orderer, commit), ``endorser`` (proposal
checks, simulation, signing), ``stub`` (the chaincode stub), ``validator``
(commit-time validation codes), ``blocks`` (Fabric block hashing), ``store``
(SQLite), ``transport``, ``server``, ``settings``, ``errors`` (AL14xx). The messages
it receives and builds are :mod:`gateway.ledger.protocol`, shared with the client; it
imports nothing of the client but the transport seam.
"""

from __future__ import annotations

from gateway.ledger.embedded.engine import EmbeddedConfig, EmbeddedLedger
from gateway.ledger.embedded.settings import config_from_settings, embedded_ca
from gateway.ledger.embedded.transport import EmbeddedTransport

__all__ = [
    "EmbeddedConfig",
    "EmbeddedLedger",
    "EmbeddedTransport",
    "config_from_settings",
    "embedded_ca",
]
