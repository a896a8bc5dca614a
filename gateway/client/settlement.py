"""Member-side signing of ledger transactions the gateway prepares (offline signing).

The gateway builds a settlement or access transaction with the member as its
creator; this module checks what it was given and signs it with the member's
own key, which never leaves the member::

    ledger = LedgerSigner(client)                      # a logged-in MemberClient
    outcome = await ledger.settle("lot-7", "propose")  # buyer or seller
    outcome["tx_id"], outcome["block_number"]

Before each signature the bytes are parsed again and the digest recomputed
here: the proposal must name this member as creator and the function (and,
when given, the arguments) asked for; the endorsed transaction must carry
the same transaction id and creator. A mismatch raises
:class:`~gateway.marketplace.errors.SignedBytesMismatch` and nothing is signed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from typing import Any

from fabric_protos.gateway import gateway_pb2
from google.protobuf.message import DecodeError

from gateway.client.member import MemberClient
from gateway.identity.signing import sha256
from gateway.ledger.protocol.proposal import parse_proposal
from gateway.ledger.protocol.transaction import parse_envelope
from gateway.marketplace.errors import SignedBytesMismatch


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise SignedBytesMismatch(f"the gateway sent no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignedBytesMismatch(f"the gateway's {what} is not base64") from None


def _same_digest(expected: bytes, claimed: object) -> None:
    if not isinstance(claimed, str) or not hmac.compare_digest(expected.hex(), claimed):
        raise SignedBytesMismatch("the digest the gateway sent is not the digest of its bytes")


class LedgerSigner:
    """Signs, as the member of ``client``, what the gateway prepares; see the module docstring."""

    def __init__(self, client: MemberClient) -> None:
        self.client = client
        self.creator = client.msp.identity.serialize()

    def check_proposal(
        self, prepared: dict[str, Any], function: str, args: Sequence[str] | None
    ) -> bytes:
        """The proposal digest to sign, after checking creator, function and arguments."""
        try:
            proposed = gateway_pb2.ProposedTransaction.FromString(
                _unb64(prepared.get("bytes"), "proposal")
            )
        except DecodeError:
            raise SignedBytesMismatch("the proposal is not a ProposedTransaction") from None
        proposal_bytes = bytes(proposed.proposal.proposal_bytes)
        info = parse_proposal(proposal_bytes)
        if info.creator != self.creator:
            raise SignedBytesMismatch("the proposal's creator is not this member")
        if not info.transaction_id_is_valid or info.transaction_id != prepared.get("tx_id"):
            raise SignedBytesMismatch("the proposal's transaction id does not match")
        if info.function != function:
            raise SignedBytesMismatch(f"asked for {function}, the proposal calls {info.function}")
        if args is not None and [a.decode() for a in info.args] != list(args):
            raise SignedBytesMismatch("the proposal's arguments are not the ones asked for")
        digest = sha256(proposal_bytes)
        _same_digest(digest, prepared.get("digest"))
        return digest

    def check_transaction(self, prepared: dict[str, Any], tx_id: str) -> bytes:
        """The transaction digest to sign, after checking its id and creator."""
        try:
            tx = gateway_pb2.PreparedTransaction.FromString(
                _unb64(prepared.get("bytes"), "transaction")
            )
        except DecodeError:
            raise SignedBytesMismatch("the transaction is not a PreparedTransaction") from None
        info = parse_envelope(tx.envelope)
        if info.transaction_id != tx_id or info.creator != self.creator:
            raise SignedBytesMismatch(
                "the endorsed transaction is not the proposal this member signed"
            )
        digest = sha256(bytes(tx.envelope.payload))
        _same_digest(digest, prepared.get("digest"))
        return digest

    def _sign(self, digest: bytes) -> str:
        return base64.b64encode(self.client.signer.sign(digest)).decode("ascii")

    async def complete(
        self, prepared: dict[str, Any], function: str, args: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Sign the proposal, have it endorsed, sign the transaction, submit; the outcome."""
        token = self.client.session.token if self.client.session else None
        digest = self.check_proposal(prepared, function, args)
        tx_id = str(prepared["tx_id"])
        endorsed = await self.client._post(
            f"/ledger/transactions/{tx_id}/endorse", {"signature": self._sign(digest)}, token
        )
        digest = self.check_transaction(endorsed, tx_id)
        outcome: dict[str, Any] = await self.client._post(
            f"/ledger/transactions/{tx_id}/submit", {"signature": self._sign(digest)}, token
        )
        return outcome

    async def transact(self, function: str, args: Sequence[str]) -> dict[str, Any]:
        """Run an offered contract function (``access:GrantAccess``…) as this member."""
        token = self.client.session.token if self.client.session else None
        prepared = await self.client._post(
            "/ledger/prepare", {"function": function, "args": list(args)}, token
        )
        return await self.complete(prepared, function, args)

    async def prepare_settlement(
        self, auction_id: str, action: str, *, any_party: bool = False
    ) -> dict[str, Any]:
        token = self.client.session.token if self.client.session else None
        body: dict[str, Any] = {"action": action}
        if any_party:
            body["any_party"] = True
        prepared: dict[str, Any] = await self.client._post(
            f"/marketplace/auctions/{auction_id}/settlement", body, token
        )
        return prepared

    async def settle(
        self, auction_id: str, action: str, *, any_party: bool = False
    ) -> dict[str, Any]:
        """``propose``, ``accept`` or ``settle`` the auction's settlement, signed by this member."""
        prepared = await self.prepare_settlement(auction_id, action, any_party=any_party)
        function = {
            "propose": "settlement:Propose",
            "accept": "settlement:Accept",
            "settle": "settlement:Settle",
        }[action]
        return await self.complete(prepared, function)
