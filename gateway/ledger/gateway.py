"""The entry point of the Fabric client: one identity talking to one or more peers.

::

    gw = Gateway(identity, [transport_org1, transport_org2], signer=signer)
    contract = gw.network("anchorline").contract("testcc")
    await contract.submit("Put", "k", "v")
    value = await contract.evaluate("Get", "k")
    await gw.close()

The transports are tried in the order given (use
:func:`~gateway.ledger.endpoints.own_org_first`), failing over on
``UNAVAILABLE``. Without a ``signer`` every step must be signed offline:
take ``digest()`` of the proposal, transaction and commit, sign elsewhere,
and attach with ``with_signature`` — or rebuild the objects from their
``bytes()`` with :meth:`Gateway.new_signed_proposal`,
:meth:`Gateway.new_signed_transaction` and :meth:`Gateway.new_signed_commit`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabric_protos.gateway import gateway_pb2
from google.protobuf.message import DecodeError

from gateway.errors import InvalidInput
from gateway.identity.msp import Identity
from gateway.identity.signing import Signer
from gateway.ledger.client import Client, Timeouts
from gateway.ledger.commit import Commit
from gateway.ledger.endpoints import Failover
from gateway.ledger.network import Network
from gateway.ledger.proposal import Proposal
from gateway.ledger.protocol.proposal import BuiltProposal, parse_proposal
from gateway.ledger.transaction import Transaction
from gateway.ledger.transport import GatewayTransport


class Gateway:
    """An identity's connection to the ledger through one or more Gateway services."""

    def __init__(
        self,
        identity: Identity,
        transports: Sequence[GatewayTransport],
        *,
        signer: Signer | None = None,
        timeouts: Timeouts | None = None,
        failover_cooldown_s: float = 2.0,
        spread: bool = False,
        close_transports: bool = True,
        watch_commits: bool = True,
    ) -> None:
        self._close_transports = close_transports
        self.client = Client(
            identity,
            Failover(transports, cooldown_s=failover_cooldown_s, spread=spread),
            signer=signer,
            timeouts=timeouts or Timeouts(),
            watch_commits=watch_commits,
        )

    @property
    def identity(self) -> Identity:
        return self.client.identity

    def network(self, channel: str) -> Network:
        return Network(self.client, channel)

    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        """A :class:`Proposal` from ``Proposal.bytes()`` made elsewhere, with its signature."""
        try:
            proposed = gateway_pb2.ProposedTransaction.FromString(data)
        except DecodeError as exc:
            raise InvalidInput(f"malformed proposed transaction: {exc}") from None
        proposal_bytes = bytes(proposed.proposal.proposal_bytes)
        info = parse_proposal(proposal_bytes)
        built = BuiltProposal(
            proposal_bytes=proposal_bytes,
            transaction_id=info.transaction_id,
            channel_id=info.channel_id,
            chaincode=info.chaincode,
        )
        return Proposal(
            self.client,
            built,
            endorsing_orgs=list(proposed.endorsing_organizations),
            signature=signature,
        )

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        """A :class:`Transaction` from ``Transaction.bytes()`` made elsewhere, signed."""
        return Transaction.from_bytes(self.client, data, signature)

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        """A :class:`Commit` from ``Commit.bytes()`` made elsewhere, with its signature.

        Such a handle cannot resubmit the transaction (it does not hold it).
        """
        try:
            request = gateway_pb2.CommitStatusRequest.FromString(data)
        except DecodeError as exc:
            raise InvalidInput(f"malformed commit status request: {exc}") from None
        return Commit(
            self.client,
            transaction_id=str(request.transaction_id),
            channel_id=str(request.channel_id),
            request_bytes=data,
            signature=signature,
        )

    async def close(self) -> None:
        """Close the transports this gateway was given, unless told they are shared."""
        if self._close_transports:
            await self.client.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
