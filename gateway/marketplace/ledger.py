"""The gateway process's connection to the ledger, as the marketplace uses it.

:class:`LedgerHandle` holds the peers' transports (shared by every Gateway
the process makes) and the gateway's own identity (it evaluates
``CheckAccess``, follows chaincode events, asks commit statuses and signs the
auctioneer's events). It is built on the trust path's connection
(:func:`gateway.ledger.connection.open_ledger`), so one process opens the
ledger once (the embedded ledger may be held by one process only) and the
gateway has one identity. :meth:`LedgerHandle.member_gateway` gives a Gateway
whose creator is a *member* and that has no signer: everything it prepares
must be signed by that member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from gateway.identity.msp import Identity
from gateway.identity.signing import Signer
from gateway.ledger.client import Timeouts
from gateway.ledger.gateway import Gateway
from gateway.ledger.transport import GatewayTransport

if TYPE_CHECKING:  # the connection module reads settings; the marketplace does not
    from gateway.ledger.connection import LedgerConnection


class LedgerHandle:
    """Transports and the gateway's identity; see the module docstring."""

    def __init__(
        self,
        *,
        kind: str,
        channel: str,
        chaincode: str,
        transports: Sequence[GatewayTransport],
        identity: Identity,
        signer: Signer,
        timeouts: Timeouts | None = None,
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.kind = kind
        self.channel = channel
        self.chaincode = chaincode
        self.transports = list(transports)
        self.identity = identity
        self.signer = signer
        self.timeouts = timeouts or Timeouts()
        self._closer = closer
        self._each_peer: list[Gateway] | None = None
        self.own = Gateway(
            identity, self.transports, signer=signer, timeouts=self.timeouts, close_transports=False
        )

    @property
    def each_peer(self) -> list[Gateway]:
        """The gateway's identity on each peer alone (to wait until every peer has a block)."""
        if self._each_peer is None:
            self._each_peer = [
                Gateway(
                    self.identity,
                    [t],
                    signer=self.signer,
                    timeouts=self.timeouts,
                    close_transports=False,
                )
                for t in self.transports
            ]
        return self._each_peer

    def _ordered(self, msp_id: str) -> list[GatewayTransport]:
        # The member's own org's peer is its gateway peer, as with a Fabric client.
        return sorted(self.transports, key=lambda t: getattr(t, "msp_id", "") != msp_id)

    def member_gateway(self, identity: Identity) -> Gateway:
        """A Gateway acting for ``identity`` with no signer: every step is signed by the member."""
        return Gateway(
            identity,
            self._ordered(identity.msp_id),
            signer=None,
            timeouts=self.timeouts,
            close_transports=False,
        )

    async def close(self) -> None:
        """Close what this handle opened (nothing when it borrowed a connection)."""
        if self._closer is not None:
            await self._closer()


def handle_from_anchoring(connection: LedgerConnection, *, owns: bool) -> LedgerHandle:
    """A handle over the trust path's :class:`~gateway.ledger.connection.LedgerConnection`.

    With ``owns`` the handle closes the connection (and the ledger) when closed.
    """
    return LedgerHandle(
        kind=connection.kind,
        channel=connection.channel,
        chaincode=connection.chaincode,
        transports=connection.transports,
        identity=connection.identity,
        signer=connection.signer,
        timeouts=connection.timeouts,
        closer=connection.close if owns else None,
    )
