"""Transactions the gateway prepares and the member signs (offline signing).

The gateway never holds a member's key. For a member ``M`` it builds the
proposal with ``M``'s serialized identity as creator and hands out its bytes
and digest; ``M`` signs the digest with its own key; the gateway endorses and
hands out the endorsed transaction's bytes and digest; ``M`` signs that; the
gateway submits it and waits for the commit. The ledger therefore records
``M`` as the creator. Only the functions in :data:`OFFERED` are prepared.

Each step answers ``{tx_id, stage, function, args, bytes, digest}``:
``bytes`` is base64 of ``gateway.ProposedTransaction`` (stage ``proposal``)
or ``gateway.PreparedTransaction`` (stage ``transaction``); ``digest`` is the
hex SHA-256 the member signs. The client library re-parses ``bytes``,
recomputes the digest and checks creator, function and arguments before it
signs (see :mod:`gateway.client.settlement`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from gateway.errors import AnchorlineError
from gateway.identity.msp import Identity
from gateway.ledger.commit import Commit
from gateway.ledger.gateway import Gateway
from gateway.ledger.proposal import Proposal
from gateway.ledger.transaction import Transaction
from gateway.marketplace.errors import FunctionNotOffered, MarketplaceError, PreparedNotFound
from gateway.marketplace.ledger import LedgerHandle

OFFERED: Final = frozenset(
    {
        "settlement:Propose",
        "settlement:Accept",
        "settlement:Settle",
        "settlement:Cancel",
        "settlement:Expire",
        "access:RegisterChannel",
        "access:GrantAccess",
        "access:RevokeAccess",
    }
)
#: A prepared transaction not signed within this long is forgotten.
PREPARED_TTL_S: Final = 120.0
_MAX_WAITING: Final = 10_000
#: How long to wait for each peer to commit a member's transaction before answering.
PEER_CATCH_UP_S: Final = 5.0

log = logging.getLogger(__name__)

Committed = Callable[["PreparedTx", dict[str, Any]], Awaitable[None]]


@dataclasses.dataclass
class PreparedTx:
    tx_id: str
    owner: str
    function: str
    args: tuple[str, ...]
    gateway: Gateway
    proposal: Proposal
    created: float
    context: dict[str, Any]
    transaction: Transaction | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_signature(value: object) -> bytes:
    if not isinstance(value, str) or not 8 <= len(value) <= 256:
        raise MarketplaceError("signature must be base64 of a DER ECDSA signature")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MarketplaceError(
            "signature must be standard base64 of a DER ECDSA signature"
        ) from None


class PreparedTransactions:
    """Proposals and transactions waiting for their creator's signature."""

    def __init__(self, ledger: LedgerHandle) -> None:
        self._ledger = ledger
        self._waiting: dict[str, PreparedTx] = {}
        self._listeners: list[Committed] = []

    def on_committed(self, listener: Committed) -> None:
        """Call ``listener(prepared, outcome)`` after each VALID commit."""
        self._listeners.append(listener)

    def _purge(self) -> None:
        now = time.monotonic()
        for tx_id in [k for k, p in self._waiting.items() if now - p.created > PREPARED_TTL_S]:
            del self._waiting[tx_id]

    def prepare(
        self,
        creator: Identity,
        function: str,
        args: Sequence[str],
        *,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build ``function(*args)`` with ``creator`` as the creator; the proposal to sign."""
        if function not in OFFERED:
            raise FunctionNotOffered(
                f"the gateway does not prepare {function!r}; it offers "
                + ", ".join(sorted(OFFERED))
            )
        self._purge()
        if len(self._waiting) >= _MAX_WAITING:
            raise MarketplaceError(
                "too many transactions are waiting for signatures: retry shortly"
            )
        gateway = self._ledger.member_gateway(creator)
        contract_name, _, name = function.partition(":")
        contract = gateway.network(self._ledger.channel).contract(
            self._ledger.chaincode, contract_name
        )
        proposal = contract.new_proposal(name, *args)
        prepared = PreparedTx(
            tx_id=proposal.transaction_id,
            owner=creator.fingerprint,
            function=function,
            args=tuple(args),
            gateway=gateway,
            proposal=proposal,
            created=time.monotonic(),
            context=dict(context or {}),
        )
        self._waiting[prepared.tx_id] = prepared
        return {
            "tx_id": prepared.tx_id,
            "stage": "proposal",
            "function": function,
            "args": list(args),
            "channel": self._ledger.channel,
            "chaincode": self._ledger.chaincode,
            "bytes": _b64(proposal.bytes()),
            "digest": proposal.digest().hex(),
        }

    def _take(self, tx_id: str, owner: str) -> PreparedTx:
        prepared = self._waiting.get(tx_id)
        if prepared is None or prepared.owner != owner:
            raise PreparedNotFound(
                f"no transaction {tx_id[:16]}… is waiting for your signature; prepare it again"
            )
        return prepared

    async def endorse(self, tx_id: str, owner: str, signature: bytes) -> dict[str, Any]:
        """Attach the member's proposal signature and collect endorsements."""
        prepared = self._take(tx_id, owner)
        if prepared.transaction is not None:
            raise PreparedNotFound(f"transaction {tx_id[:16]}… is already endorsed: submit it")
        try:
            transaction = await prepared.proposal.with_signature(signature).endorse()
        except BaseException:
            # A refused proposal cannot be retried with the same id: start again.
            self._waiting.pop(tx_id, None)
            raise
        prepared.transaction = transaction
        return {
            "tx_id": tx_id,
            "stage": "transaction",
            "function": prepared.function,
            "args": list(prepared.args),
            "bytes": _b64(transaction.bytes()),
            "digest": transaction.digest().hex(),
            "result": _json_or_text(transaction.result),
        }

    async def submit(self, tx_id: str, owner: str, signature: bytes) -> dict[str, Any]:
        """Submit the member-signed transaction and wait for its commit."""
        prepared = self._take(tx_id, owner)
        if prepared.transaction is None:
            raise PreparedNotFound(f"transaction {tx_id[:16]}… is not endorsed yet: endorse it")
        self._waiting.pop(tx_id, None)
        signed = prepared.transaction.with_signature(signature)
        await signed.submit()
        # The commit status is asked with the gateway's own identity: it reads, it does
        # not create anything, so it needs no member signature.
        own = self._ledger.own.client
        status = await Commit(own, transaction_id=tx_id, channel_id=signed.channel_id).status()
        status.raise_for_status()
        await self._everywhere(tx_id, signed.channel_id)
        outcome = {
            "tx_id": tx_id,
            "function": prepared.function,
            "block_number": status.block_number,
            "valid": True,
            "result": _json_or_text(prepared.transaction.result),
            "context": prepared.context,
        }
        for listener in self._listeners:
            await listener(prepared, outcome)
        return outcome

    async def _everywhere(self, tx_id: str, channel: str) -> None:
        # Peers commit a block at slightly different times. The member's next step
        # (accept after propose, settle after accept) is endorsed by peers of several
        # orgs, so return only once every peer has this transaction: each peer's
        # CommitStatus answers when that peer has committed it.
        async def one(gateway: Gateway) -> None:
            try:
                await Commit(gateway.client, transaction_id=tx_id, channel_id=channel).status(
                    timeout=PEER_CATCH_UP_S
                )
            except AnchorlineError as exc:
                log.info(
                    "peer did not confirm %s within %s s: %s", tx_id[:12], PEER_CATCH_UP_S, exc
                )

        await asyncio.gather(*(one(g) for g in self._ledger.each_peer))

    async def close(self) -> None:
        self._waiting.clear()
        await asyncio.sleep(0)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
