"""Errors of the embedded ledger (codes AL14xx).

Errors a Fabric peer would answer with a gRPC status are raised as
:class:`gateway.ledger.transport.RpcError`, exactly as a peer gives them; the
types here are for the ledger's own operation: opening, configuration, storage.
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class EmbeddedLedgerError(AnchorlineError):
    """Base of the embedded ledger's own errors."""

    code = "AL1400"
    http_status = 500


class LedgerCorrupted(EmbeddedLedgerError):
    """The stored blocks do not form an unbroken hash chain, or a block is unreadable."""

    code = "AL1401"


class LedgerInUse(EmbeddedLedgerError):
    """Another process holds the embedded ledger open for writing."""

    code = "AL1402"
    http_status = 503


class EmbeddedConfigError(EmbeddedLedgerError):
    """The embedded ledger's configuration cannot be used (orgs, chaincodes, channel)."""

    code = "AL1403"


class LedgerClosed(EmbeddedLedgerError):
    """The embedded ledger is closed, or no live process serves it on loopback."""

    code = "AL1404"
    http_status = 503
