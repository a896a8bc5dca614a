"""The marketplace of one gateway process: auctions on live channels, settlement, grants.

:class:`MarketplaceService` sits on the gateway's seams and adds no path of
its own for live events:

- bids are ordinary signed events on the auction's channel, verified and
  stored by the hub; the service reads every committed event (pipeline
  listener) and keeps each auction's board and best bid;
- the seller opens an auction with a signed ``auction.open`` event sent over
  REST (:meth:`open_auction`); it passes the same intake as an emitted event
  (:func:`gateway.events.intake.intake_authorized`: the configured limits, the
  authorizer's ``WRITE`` decision for the auction's channel, the signature
  against the seller's session);
- at the deadline the service closes the auction: its
  :class:`ClosedAuctionPolicy` refuses further emits to the channel (the
  authorizer is invalidated for the channel, so the hub refuses the next bid
  with AL1505), then it publishes ``auction.closed`` with the winner, signed
  by the gateway's identity, stored and anchored like any event;
- settlement goes through :class:`~gateway.marketplace.prepared.PreparedTransactions`:
  the gateway builds ``settlement:Propose/Accept/Settle`` for the buyer or the
  seller, who sign them; each VALID commit is published as
  ``settlement.status`` ``{state, tx_id, block_number}`` on the channel;
- premium channels are guarded by :class:`~gateway.marketplace.access.OnChainGrantPolicy`,
  and :func:`~gateway.marketplace.access.follow_grants` applies revocations.

The service is built by the composition root (:mod:`gateway.app`) from narrow
collaborators (the authorizer, the event pipeline, the event log, the
identities table, the intake limits, the ledger handle and the trust path's
evidence); it imports nothing of the web or Socket.IO layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives import serialization

from gateway.auth.authorizer import Action, Authorizer, Decision
from gateway.auth.principal import Principal
from gateway.clock import now_ms
from gateway.errors import AnchorlineError
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake, intake_authorized
from gateway.events.model import AppendResult, NewEvent
from gateway.events.pipeline import EventPipeline
from gateway.events.signed import sign_event
from gateway.identity.certificates import role as certificate_role
from gateway.identity.msp import Identity, identity_from_pem
from gateway.marketplace.access import ACCESS_CONTRACT, OnChainGrantPolicy, follow_grants
from gateway.marketplace.auctions import (
    BID_TYPE,
    CLOSED_TYPE,
    OPEN_TYPE,
    SETTLEMENT_TYPE,
    Auction,
    Party,
    parse_terms,
)
from gateway.marketplace.errors import (
    AuctionNotFound,
    InvalidAuction,
    LedgerNotReady,
    MarketplaceError,
    NotAnchoredYet,
    NotAParty,
    NoWinner,
)
from gateway.marketplace.ledger import LedgerHandle
from gateway.marketplace.prepared import PreparedTransactions, PreparedTx

if TYPE_CHECKING:
    from gateway.anchoring.evidence import Evidence
    from gateway.events.pipeline import Committed

log = logging.getLogger(__name__)

SETTLEMENT_TTL = dt.timedelta(hours=1)
ACTIONS = ("propose", "accept", "settle")
_STATE_OF = {
    "settlement:Propose": "Proposed",
    "settlement:Accept": "Accepted",
    "settlement:Settle": "Settled",
}


class EventLog(Protocol):
    """What the service reads of the event store."""

    async def last_seq(self, channel: str) -> int: ...


class Identities(Protocol):
    """The identities table: certificates of the signers of stored events."""

    async def record_identity(
        self,
        *,
        fingerprint: str,
        msp_id: str,
        role: str,
        subject: str,
        certificate_pem: str,
        not_after_ms: int,
        now_ms: int,
    ) -> None: ...

    async def certificate_of(self, fingerprint: str) -> str | None: ...


class ClosedAuctionPolicy:
    """Refuses emits to the channel of an auction that has closed."""

    def __init__(self, service: MarketplaceService) -> None:
        self._service = service

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
        if action is Action.WRITE:
            auction = self._service.by_channel.get(channel)
            if auction is not None and auction.closed:
                return Decision.DENY
        return Decision.ABSTAIN


class MarketplaceService:
    """See the module docstring."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        pipeline: EventPipeline,
        events: EventLog,
        identities: Identities,
        limits: IntakeLimits,
        ledger: LedgerHandle | None,
        evidence: Evidence | None,
        emit_roles: frozenset[str],
        premium_pattern: str = "premium-*",
    ) -> None:
        self._authorizer = authorizer
        self._pipeline = pipeline
        self._events = events
        self._identities = identities
        self._limits = limits
        self.ledger = ledger
        self._evidence = evidence
        self.auctions: dict[str, Auction] = {}
        self.by_channel: dict[str, Auction] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._follower: asyncio.Task[None] | None = None
        self.prepared = PreparedTransactions(ledger) if ledger is not None else None
        self.grants: OnChainGrantPolicy | None = None
        self._own: Principal | None = None
        if ledger is not None:
            contract = ledger.own.network(ledger.channel).contract(
                ledger.chaincode, ACCESS_CONTRACT
            )
            self.grants = OnChainGrantPolicy(contract, premium_pattern, emit_roles)
        self.follower_ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.grants is not None:
            self._authorizer.add_policy(self.grants, first=True)
        self._authorizer.add_policy(ClosedAuctionPolicy(self), first=True)
        self._pipeline.add_listener(self._on_committed)
        if self.ledger is not None:
            await self._record_own_identity()
            assert self.prepared is not None
            self.prepared.on_committed(self._on_ledger_commit)
            self._follower = asyncio.create_task(self._follow(), name="marketplace-grants")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._follower
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self) -> None:
        assert self.ledger is not None
        network = self.ledger.own.network(self.ledger.channel)
        while True:
            try:
                await follow_grants(
                    network, self.ledger.chaincode, self._invalidate, self.follower_ready
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("grant follower stopped (%s); restarting in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _invalidate(self, fingerprint: str | None, channel: str) -> None:
        await self._authorizer.invalidate(fingerprint=fingerprint, channel=channel)

    async def _record_own_identity(self) -> None:
        # The auctioneer's events carry the gateway's certificate fingerprint; proofs
        # of them need the certificate in the identities table, like a member's.
        assert self.ledger is not None
        identity = self.ledger.identity
        cert = identity.certificate
        now = now_ms()
        role = certificate_role(cert) or "admin"
        await self._identities.record_identity(
            fingerprint=identity.fingerprint,
            msp_id=identity.msp_id,
            role=role,
            subject=cert.subject.rfc4514_string(),
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
            now_ms=now,
        )
        # The auctioneer's events pass the intake as the gateway's own principal.
        self._own = Principal(
            "gateway", identity.fingerprint, identity.msp_id, role, 2**62, identity.public_key
        )

    # -- events ----------------------------------------------------------------------------

    async def _store(self, item: NewEvent) -> AppendResult:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[AppendResult | AnchorlineError] = loop.create_future()

        def finish(result: AppendResult | AnchorlineError) -> None:
            if not done.done():
                done.set_result(result)

        self._pipeline.submit(item, finish, origin=None)
        result = await done
        if isinstance(result, AnchorlineError):
            raise result
        return result

    async def publish(self, channel: str, type: str, payload: Any) -> int:
        """Store and broadcast an event signed by the gateway's identity; its seq."""
        if self.ledger is None or self._own is None:
            raise LedgerNotReady("the gateway has no identity to sign marketplace events")
        wire = sign_event(self.ledger.signer, channel=channel, type=type, payload=payload)
        item = intake(self._own, wire, self._limits, GATEWAY_AUTHORITY, now_ms())
        result = await self._store(item)
        return result.stored.seq

    def _on_committed(self, committed: Sequence[Committed]) -> None:
        for item in committed:
            event = item.event
            if event.type != BID_TYPE:
                continue
            auction = self.by_channel.get(event.channel)
            if auction is None:
                continue
            bid = auction.record_bid(
                seq=event.seq,
                event_id=event.id,
                bidder=Party(event.msp_id, event.signer),
                payload=event.payload,
                received_ms=event.received_at_ms,
            )
            if not bid.valid:
                log.info("bid %s/%d does not count: %s", event.channel, event.seq, bid.reason)

    # -- auctions --------------------------------------------------------------------------

    async def open_auction(self, principal: Principal, raw: object) -> dict[str, Any]:
        """Open an auction from the seller's signed ``auction.open`` event."""
        item = await intake_authorized(principal, raw, self._limits, self._authorizer, now_ms())
        event = item.event
        if event.type != OPEN_TYPE:
            raise InvalidAuction(f"an auction is opened with a signed {OPEN_TYPE!r} event")
        terms = parse_terms(event.payload, channel=event.channel, now_ms=now_ms())
        if terms.auction_id in self.auctions or await self._events.last_seq(terms.channel):
            raise InvalidAuction(f"auction {terms.auction_id!r} already exists: choose another id")
        if terms.premium and self.grants is None:
            raise LedgerNotReady("premium auctions need the ledger's access contract")
        result = await self._store(item)
        auction = Auction(
            terms=terms,
            seller=Party(principal.msp_id, principal.fingerprint),
            open_seq=result.stored.seq,
        )
        self.auctions[terms.auction_id] = auction
        self.by_channel[terms.channel] = auction
        delay = max(0.0, (terms.closes_at_ms - now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timers[terms.auction_id] = loop.call_later(delay, self._spawn_close, terms.auction_id)
        log.info(
            "auction %s open on %s until %d", terms.auction_id, terms.channel, terms.closes_at_ms
        )
        return auction.to_json()

    def _spawn_close(self, auction_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self.close_auction(auction_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get(self, auction_id: str) -> Auction:
        auction = self.auctions.get(auction_id)
        if auction is None:
            raise AuctionNotFound(f"no auction {auction_id!r} on this gateway")
        return auction

    async def close_auction(self, auction_id: str) -> dict[str, Any]:
        """Close at the deadline: refuse further bids, then publish the result."""
        auction = self.get(auction_id)
        if auction.closed:
            return auction.to_json()
        self._timers.pop(auction_id, None)
        # Bids still in the commit queue land before the close is decided.
        await self._pipeline.drain()
        winner = auction.close(now_ms())
        await self._authorizer.invalidate(channel=auction.channel)
        payload = {
            "auction_id": auction_id,
            "closed_at": auction.closed_at_ms,
            "bids": len(auction.bids),
            "valid_bids": sum(1 for b in auction.bids if b.valid),
            "winner": winner.to_json() if winner else None,
        }
        if self.ledger is not None:
            try:
                await self.publish(auction.channel, CLOSED_TYPE, payload)
            except AnchorlineError as exc:
                log.warning("could not publish the close of %s: %s", auction_id, exc)
        log.info("auction %s closed: winner %s", auction_id, payload["winner"])
        return auction.to_json()

    # -- settlement ------------------------------------------------------------------------

    async def creator(self, principal: Principal) -> Identity:
        """The ledger identity of ``principal`` (its certificate from the identities
        table), as the creator of the transactions it signs; raises :class:`NotAParty`
        when the gateway has no certificate for the session."""
        pem = await self._identities.certificate_of(principal.fingerprint)
        if pem is None:
            raise NotAParty("log in again: the gateway has no certificate for this session")
        return identity_from_pem(principal.msp_id, pem.encode())

    def _party_role(self, auction: Auction, principal: Principal) -> str:
        me = Party(principal.msp_id, principal.fingerprint)
        if auction.winner is not None and me == auction.winner.bidder:
            return "buyer"
        if me == auction.seller:
            return "seller"
        return "none"

    async def settlement_id(self, auction: Auction) -> str:
        return f"auction-{auction.auction_id}"

    async def prepare_settlement(
        self, principal: Principal, auction_id: str, action: str, *, any_party: bool = False
    ) -> dict[str, Any]:
        """The settlement transaction ``action`` prepared for ``principal`` to sign.

        ``propose`` is for the buyer or the seller and references the winning
        bid's inclusion proof; ``accept`` and ``settle`` name the settlement.
        With ``any_party`` the gateway does not check who asks, and leaves the
        refusal to the chaincode (used to show that the chaincode refuses it).
        """
        if self.prepared is None:
            raise LedgerNotReady("this gateway runs without a ledger: settlement is unavailable")
        if action not in ACTIONS:
            raise MarketplaceError(f"action must be one of {', '.join(ACTIONS)}")
        auction = self.get(auction_id)
        if not auction.closed:
            raise MarketplaceError(f"auction {auction_id!r} is still open until its deadline")
        winner = auction.winner
        if winner is None:
            raise NoWinner(f"auction {auction_id!r} closed without a valid bid")
        role = self._party_role(auction, principal)
        if role == "none" and not any_party:
            raise NotAParty(
                f"only the seller or the winning bidder of {auction_id!r} may settle it"
            )
        creator = await self.creator(principal)
        settlement_id = await self.settlement_id(auction)
        context = {"auction_id": auction_id, "settlement_id": settlement_id, "action": action}
        if action == "propose":
            args = [json.dumps(await self._proposal(auction, settlement_id), sort_keys=True)]
            function = "settlement:Propose"
        else:
            args = [settlement_id]
            function = "settlement:Accept" if action == "accept" else "settlement:Settle"
        return self.prepared.prepare(creator, function, args, context=context)

    async def _proposal(self, auction: Auction, settlement_id: str) -> dict[str, Any]:
        winner = auction.winner
        assert winner is not None
        if self._evidence is None:
            raise LedgerNotReady("the trust path is not running: no proof of the winning bid")
        try:
            proof = await self._evidence.event_proof(auction.channel, winner.seq)
        except AnchorlineError as exc:
            raise NotAnchoredYet(
                f"the winning bid is not anchored yet ({exc.message}); retry shortly"
            ) from None
        if proof.anchor is None or proof.anchor.block_number is None:
            raise NotAnchoredYet(
                f"the winning bid (seq {winner.seq}) is {proof.status}, not finalized yet; "
                "retry when its badge says finalized"
            )
        expires = dt.datetime.now(dt.UTC) + SETTLEMENT_TTL
        return {
            "settlement_id": settlement_id,
            "buyer": winner.bidder.to_json(),
            "seller": auction.seller.to_json(),
            "amount": str(winner.amount),
            "asset": auction.terms.item,
            "event": {
                "batch_id": proof.batch.batch_id,
                "leaf_index": proof.inclusion.index,
                "leaf_hash": proof.leaf_hash.hex(),
                "proof": [s.hex() for s in proof.inclusion.siblings],
            },
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    async def _on_ledger_commit(self, prepared: PreparedTx, outcome: dict[str, Any]) -> None:
        auction_id = prepared.context.get("auction_id")
        state = _STATE_OF.get(prepared.function)
        if not isinstance(auction_id, str) or state is None or auction_id not in self.auctions:
            return
        auction = self.auctions[auction_id]
        step = {
            "settlement_id": prepared.context.get("settlement_id"),
            "state": state,
            "tx_id": outcome["tx_id"],
            "block_number": outcome["block_number"],
            "by": {"msp_id": prepared.gateway.identity.msp_id, "fingerprint": prepared.owner},
        }
        history = [*auction.settlement.get("history", []), step]
        auction.settlement = {**step, "history": history}
        try:
            await self.publish(auction.channel, SETTLEMENT_TYPE, step)
        except AnchorlineError as exc:
            log.warning("could not publish settlement status of %s: %s", auction_id, exc)


__all__ = ["ClosedAuctionPolicy", "EventLog", "Identities", "MarketplaceService"]
