"""The client's Proposal object: a transaction proposal to sign, evaluate or endorse.

The :class:`Proposal` object is what ``Contract.new_proposal`` returns: it
exposes ``bytes()`` (a ``gateway.ProposedTransaction``, to carry) and
``digest()`` (SHA-256 of the ``peer.Proposal`` bytes, to sign) so the
proposal can be signed elsewhere, and ``evaluate``/``endorse`` once it
carries a signature. Building and parsing the messages is
:mod:`gateway.ledger.protocol.proposal`.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from gateway.identity.signing import sha256
from gateway.ledger.client import Client
from gateway.ledger.protocol.proposal import BuiltProposal, signed_proposal
from gateway.ledger.transaction import Transaction


class Proposal:
    """A transaction proposal, ready to be signed, evaluated or endorsed.

    ``bytes()`` is the serialized ``peer.Proposal``; ``digest()`` its SHA-256,
    which is what a signer signs. A proposal made by a client with a signer
    is signed at creation; otherwise attach a signature made elsewhere with
    :meth:`with_signature` (or ``Gateway.new_signed_proposal``).
    """

    def __init__(
        self,
        client: Client,
        built: BuiltProposal,
        *,
        endorsing_orgs: Sequence[str] = (),
        signature: builtins.bytes | None = None,
    ) -> None:
        self._client = client
        self._built = built
        self._endorsing_orgs = tuple(endorsing_orgs)
        self._signature = signature

    @property
    def transaction_id(self) -> str:
        return self._built.transaction_id

    @property
    def channel_id(self) -> str:
        return self._built.channel_id

    @property
    def chaincode(self) -> str:
        return self._built.chaincode

    @property
    def endorsing_orgs(self) -> tuple[str, ...]:
        return self._endorsing_orgs

    @property
    def signature(self) -> bytes | None:
        return self._signature

    def bytes(self) -> builtins.bytes:
        """A serialized ``gateway.ProposedTransaction`` (proposal, id, endorsing orgs).

        For carrying the proposal to whoever signs it; rebuild it there with
        ``Gateway.new_signed_proposal(bytes, signature)``. Sign :meth:`digest`,
        not these bytes.
        """
        proposed = gateway_pb2.ProposedTransaction(
            transaction_id=self._built.transaction_id,
            proposal=proposal_pb2.SignedProposal(proposal_bytes=self._built.proposal_bytes),
            endorsing_organizations=list(self._endorsing_orgs),
        )
        return bytes(proposed.SerializeToString())

    def proposal_bytes(self) -> builtins.bytes:
        """The serialized ``peer.Proposal`` itself."""
        return self._built.proposal_bytes

    def digest(self) -> builtins.bytes:
        """SHA-256 of :meth:`bytes`: what the creator signs."""
        return sha256(self._built.proposal_bytes)

    def with_signature(self, signature: builtins.bytes) -> Proposal:
        """The same proposal carrying a signature made elsewhere."""
        return Proposal(
            self._client, self._built, endorsing_orgs=self._endorsing_orgs, signature=signature
        )

    def _signed(self) -> proposal_pb2.SignedProposal:
        signature = self._signature
        if signature is None:
            signature = self._client.sign_digest(self.digest(), what="proposal")
            self._signature = signature
        return signed_proposal(self._built.proposal_bytes, signature)

    async def evaluate(
        self, *, target_orgs: Sequence[str] = (), timeout: float | None = None
    ) -> builtins.bytes:
        """Run the proposal on one peer without ordering it; the chaincode's result."""
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel_id,
            proposed_transaction=self._signed(),
            target_organizations=list(target_orgs),
        )
        response = await self._client.evaluate(request, timeout=timeout)
        return bytes(response.result.payload)

    async def endorse(self, *, timeout: float | None = None) -> Transaction:
        """Collect endorsements; the prepared transaction, still to be signed and submitted."""
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel_id,
            proposed_transaction=self._signed(),
            endorsing_organizations=list(self._endorsing_orgs),
        )
        response = await self._client.endorse(request, timeout=timeout)
        return Transaction(
            self._client,
            response.prepared_transaction,
            transaction_id=self.transaction_id,
            channel_id=self.channel_id,
        )
