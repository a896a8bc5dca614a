"""The marketplace of one gateway process: auctions on live channels, settlement, grants.

:class:`MarketplaceService` sits on the gateway's seams and adds no path of
its own for live events:

- bids are ordinary signed events on the auction's channel, verified and
  stored by the hub; the service reads every committed event (pipeline
  listener) and keeps each auction's board and best bid;
- the seller opens an auction with a signed ``auction.open`` event sent over
  REST (:meth:`open_auction`); it passes the same door and intake as an emitted
  event (:meth:`~gateway.events.pipeline.EventPipeline.admit`: the seller's
  emit budget and admission; :func:`gateway.events.intake.intake_authorized`:
  the configured limits, the authorizer's ``WRITE`` decision for the auction's
  channel, the signature against the seller's session);
- at the deadline the service closes the auction: its
  :class:`ClosedAuctionPolicy` refuses further emits to the channel (the
  authorizer is invalidated for the channel, so the hub refuses the next bid
  with AL1511), then it publishes ``auction.closed`` with the winner, signed
  by the gateway's identity, stored and anchored like any event;
- every auction is kept in the gateway's database (:class:`~.records.AuctionStore`,
  states in :mod:`.records`): at start the service rebuilds each auction from
  its record and its bids (read back from the event store), re-arms the
  deadline timers, closes the auctions whose deadline passed while the
  gateway was down, and finishes a close that was under way. The winner is
  decided once, from the stored bids received before the deadline
  (``closed_at`` is the deadline), so it is the same whether the gateway
  stayed up or not; the close event is chosen (id, ``client_ts``, payload)
  and recorded before it is published, so publishing it again stores
  nothing twice;
- :meth:`MarketplaceService.admit` (a pipeline admission check) accepts an
  event into an ``auction-*`` or ``premium-*`` channel only while that
  channel's auction is known: before the auctions are loaded, or when a
  channel's record could not be read, it refuses with
  :class:`~.errors.MarketStateUnknown` (AL1912); a channel without an auction
  is refused with :class:`~.errors.AuctionNotFound` (AL1901);
- settlement goes through :class:`~gateway.marketplace.prepared.PreparedTransactions`:
  the gateway builds ``settlement:Propose/Accept/Settle`` for the buyer or the
  seller, who sign them; each VALID commit is published as
  ``settlement.status`` ``{state, tx_id, block_number}`` on the channel;
- premium channels are guarded by :class:`~gateway.marketplace.access.OnChainGrantPolicy`,
  and :func:`~gateway.marketplace.access.follow_grants` applies revocations.

The service is built by the composition root (:mod:`gateway.app`) from narrow
collaborators (the authorizer, the event pipeline, the event log, the
identities table, the auction store, the intake limits, the ledger handle and
the trust path's evidence); it imports nothing of the web or Socket.IO layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives import serialization

from gateway.auth.authorizer import Action, Authorizer, Decision
from gateway.auth.principal import Principal
from gateway.clock import now_ms
from gateway.errors import AnchorlineError
from gateway.events.errors import StoreUnavailable
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake, intake_authorized
from gateway.events.model import AppendResult, NewEvent, StoredEvent
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
    Bid,
    Party,
    is_auction_channel,
    parse_terms,
)
from gateway.marketplace.errors import (
    AuctionNotFound,
    InvalidAuction,
    InvalidQuery,
    LedgerNotReady,
    MarketplaceError,
    MarketStateUnknown,
    NotAnchoredYet,
    NotAParty,
    NoWinner,
)
from gateway.marketplace.ledger import LedgerHandle
from gateway.marketplace.prepared import PreparedTransactions, PreparedTx
from gateway.marketplace.records import (
    SETTLEMENT_AWAITING,
    SETTLEMENT_STATES,
    AuctionRecord,
    AuctionStore,
    BrokenRecord,
    PlannedEvent,
    Winner,
)

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
_REPLAY_PAGE = 500
# A failed load, close or publication is tried again after this long, doubling up to
# the cap; a gateway that stops meanwhile resumes from the stored state at its next start.
_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 30.0
_CLOSE_ATTEMPTS = 20
MAX_LISTING = 500


class EventLog(Protocol):
    """What the service reads of the event store."""

    async def last_seq(self, channel: str) -> int: ...

    async def after(self, channel: str, after_seq: int, limit: int) -> list[StoredEvent]: ...


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
    """Refuses emits to the channel of an auction that has closed.

    It also loads, on first use, an auction another gateway process opened
    (the database is shared): a member joins a channel before emitting to it,
    so the auction is known here before its first bid arrives.
    """

    def __init__(self, service: MarketplaceService) -> None:
        self._service = service

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
        if not is_auction_channel(channel):
            return Decision.ABSTAIN
        auction = await self._service.known(channel)
        if action is Action.WRITE and auction is not None and auction.closed:
            return Decision.DENY
        return Decision.ABSTAIN


def _public_steps(settlement: dict[str, Any]) -> list[dict[str, Any]]:
    history = settlement.get("history", [])
    return [
        {k: v for k, v in step.items() if k != "event"}
        for step in history
        if isinstance(step, dict)
    ]


def _public_settlement(settlement: dict[str, Any]) -> dict[str, Any]:
    if not settlement:
        return {}
    return {**settlement, "history": _public_steps(settlement)}


class MarketplaceService:
    """See the module docstring."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        pipeline: EventPipeline,
        events: EventLog,
        identities: Identities,
        store: AuctionStore,
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
        self._store = store
        self._limits = limits
        self.ledger = ledger
        self._evidence = evidence
        self.auctions: dict[str, Auction] = {}
        self.by_channel: dict[str, Auction] = {}
        # What the store holds of each known auction beyond the live board.
        self._close_events: dict[str, PlannedEvent] = {}
        self._close_seqs: dict[str, int] = {}
        # Channels whose auction is being opened: only its open event may pass admit().
        self._opening: dict[str, str] = {}
        # Channels whose record could not be read back, with the reason.
        self.unknown: dict[str, str] = {}
        self.loaded = False
        self._load_error = "the auctions are being loaded"
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._close_locks: dict[str, asyncio.Lock] = {}
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
        """Plug into the seams, then load the stored auctions.

        A failed load does not stop the gateway: auction channels refuse
        events (AL1912) and the load is retried in the background.
        """
        if self.grants is not None:
            self._authorizer.add_policy(self.grants, first=True)
        self._authorizer.add_policy(ClosedAuctionPolicy(self), first=True)
        self._pipeline.add_admission_check(self.admit)
        self._pipeline.add_listener(self._on_committed)
        if self.ledger is not None:
            await self._record_own_identity()
            assert self.prepared is not None
            self.prepared.on_committed(self._on_ledger_commit)
            self._follower = asyncio.create_task(self._follow(), name="marketplace-grants")
        if not await self._load():
            self._spawn(self._reload(), "marketplace-reload")

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

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    # -- loading ---------------------------------------------------------------------------

    async def _load(self) -> bool:
        """Every stored auction rebuilt; False (and the reason kept) when the store failed."""
        try:
            records = await self._store.load_all()
        except StoreUnavailable as exc:
            self._load_error = f"the stored auctions could not be read: {exc.message}"
            log.warning("marketplace: %s; retrying", self._load_error)
            return False
        for record in records:
            await self._adopt(record)
        self.loaded = True
        log.info(
            "marketplace: %d auction(s) loaded, %d open, %d unreadable",
            len(self.auctions),
            sum(1 for a in self.auctions.values() if not a.closed),
            len(self.unknown),
        )
        return True

    async def _reload(self) -> None:
        delay = _RETRY_FIRST_S
        while not self.loaded:
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
            await self._load()
        # A channel whose rebuild failed for a passing reason (the event store) is retried.
        while self.unknown:
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
            for channel in list(self.unknown):
                await self._load_channel(channel)

    async def known(self, channel: str) -> Auction | None:
        """The auction of ``channel``, loading its record when another process opened it."""
        auction = self.by_channel.get(channel)
        if auction is not None or not self.loaded or channel in self._opening:
            return auction
        return await self._load_channel(channel)

    async def _load_channel(self, channel: str) -> Auction | None:
        lock = self._load_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            if channel in self.by_channel:
                return self.by_channel[channel]
            try:
                record = await self._store.by_channel(channel)
            except StoreUnavailable as exc:
                log.warning("marketplace: could not look up %s: %s", channel, exc.message)
                return None
            if record is None:
                self.unknown.pop(channel, None)
                return None
            await self._adopt(record)
            return self.by_channel.get(channel)

    async def _adopt(self, record: AuctionRecord | BrokenRecord) -> None:
        """Make a stored auction live: rebuilt board, timer, or the rest of its close."""
        if isinstance(record, BrokenRecord):
            self.unknown[record.channel] = f"its stored record is unreadable ({record.reason})"
            log.error("marketplace: auction %s: %s", record.auction_id, record.reason)
            return
        channel = record.terms.channel
        try:
            if record.state == "opening":
                resolved = await self._resolve_opening(record)
                if resolved is None:
                    return
                record = resolved
            auction = await self._rebuild(record)
        except StoreUnavailable as exc:
            self.unknown[channel] = f"its bids could not be read ({exc.message})"
            log.warning("marketplace: auction %s not loaded: %s", record.terms.auction_id, exc)
            return
        self.unknown.pop(channel, None)
        auction_id = record.terms.auction_id
        self.auctions[auction_id] = auction
        self.by_channel[channel] = auction
        if record.close_event is not None:
            self._close_events[auction_id] = record.close_event
        if record.state == "open":
            self._arm(auction)
        elif record.state == "closing":
            # The gateway stopped between deciding the close and storing its event.
            self._spawn_close(auction_id)
        else:
            if record.close_seq is not None:
                self._close_seqs[auction_id] = record.close_seq
            if any("seq" not in step for step in record.settlement.get("history", [])):
                self._spawn(self._republish_settlement(auction_id), f"settlement-{auction_id}")

    async def _resolve_opening(self, record: AuctionRecord) -> AuctionRecord | None:
        """An open that a stopped gateway left half done: open when its event is stored."""
        first = await self._events.after(record.terms.channel, 0, 1)
        if first and first[0].id == record.open_event_id:
            await self._store.mark_open(record, first[0].seq, now_ms())
            return dataclasses.replace(record, state="open", open_seq=first[0].seq)
        # Never stored, so never acknowledged to the seller: forget it.
        await self._store.remove(record.terms.auction_id)
        log.info("marketplace: auction %s was never opened; removed", record.terms.auction_id)
        return None

    async def _stored_bids(self, auction: Auction) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        last = auction.open_seq
        while True:
            page = await self._events.after(auction.channel, last, _REPLAY_PAGE)
            found.extend(e for e in page if e.type == BID_TYPE)
            if len(page) < _REPLAY_PAGE:
                return found
            last = page[-1].seq

    @staticmethod
    def _replay(auction: Auction, bids: Sequence[StoredEvent]) -> None:
        for event in bids:
            auction.record_bid(
                seq=event.seq,
                event_id=event.id,
                bidder=Party(event.msp_id, event.signer),
                payload=event.payload,
                received_ms=event.received_at_ms,
            )

    async def _rebuild(self, record: AuctionRecord) -> Auction:
        assert record.open_seq is not None
        auction = Auction(terms=record.terms, seller=record.seller, open_seq=record.open_seq)
        self._replay(auction, await self._stored_bids(auction))
        auction.settlement = dict(record.settlement)
        if record.state in ("closing", "closed"):
            planned = record.close_event
            closed_at = planned.payload.get("closed_at") if planned else None
            auction.close(closed_at if isinstance(closed_at, int) else record.terms.closes_at_ms)
            # The decision that was recorded stands, whatever a replay would say now.
            decided = record.winner.seq if record.winner else None
            auction.winner = next((b for b in auction.bids if b.seq == decided), None)
            if (auction.winner.seq if auction.winner else None) != decided:
                log.error(
                    "marketplace: auction %s: recorded winner seq %s not among its bids",
                    record.terms.auction_id,
                    decided,
                )
        return auction

    # -- events ----------------------------------------------------------------------------

    def admit(self, item: NewEvent) -> None:
        """Pipeline admission check: an auction channel takes events only while its auction
        is known; raises :class:`MarketStateUnknown` or :class:`AuctionNotFound`."""
        channel = item.event.channel
        if channel in self.by_channel or not is_auction_channel(channel):
            return
        if self._opening.get(channel) == item.event.id:
            return
        if not self.loaded:
            raise MarketStateUnknown(
                f"the auction on {channel!r} is not loaded yet ({self._load_error}): retry shortly"
            )
        reason = self.unknown.get(channel)
        if reason is not None:
            raise MarketStateUnknown(
                f"the auction on {channel!r} is not loaded: {reason}; retry shortly"
            )
        raise AuctionNotFound(
            f"no auction runs on channel {channel!r}: open it (POST /marketplace/auctions) "
            "before sending events to it"
        )

    async def _store_event(self, item: NewEvent) -> AppendResult:
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
        planned = PlannedEvent(uuid.uuid4().hex, now_ms(), payload)
        return await self._publish_planned(channel, type, planned)

    async def _publish_planned(self, channel: str, type: str, planned: PlannedEvent) -> int:
        """Store ``planned`` signed by the gateway; its seq, also when it was stored before."""
        if self.ledger is None or self._own is None:
            raise LedgerNotReady("the gateway has no identity to sign marketplace events")
        wire = sign_event(
            self.ledger.signer,
            channel=channel,
            type=type,
            payload=planned.payload,
            event_id=planned.event_id,
            client_ts=planned.client_ts,
        )
        item = intake(self._own, wire, self._limits, GATEWAY_AUTHORITY, now_ms())
        result = await self._store_event(item)
        if result.duplicate and (result.conflict or result.stored.channel != channel):
            raise MarketplaceError(
                f"event id {planned.event_id} is taken by another event: the {type} of "
                f"{channel!r} was not published"
            )
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
        """Open an auction from the seller's signed ``auction.open`` event.

        The auction's record is written (``opening``) before its event is
        stored, and marked ``open`` after: a gateway that stops in between
        finds out at its next start which of the two happened.
        """
        # The door of a socket emit too: the seller's emit budget, then admission.
        self._pipeline.admit(principal.fingerprint)
        item = await intake_authorized(principal, raw, self._limits, self._authorizer, now_ms())
        event = item.event
        if event.type != OPEN_TYPE:
            raise InvalidAuction(f"an auction is opened with a signed {OPEN_TYPE!r} event")
        terms = parse_terms(event.payload, channel=event.channel, now_ms=now_ms())
        taken = InvalidAuction(f"auction {terms.auction_id!r} already exists: choose another id")
        if (
            terms.auction_id in self.auctions
            or terms.channel in self._opening
            or terms.channel in self.unknown
            or await self._events.last_seq(terms.channel)
        ):
            raise taken
        if terms.premium and self.grants is None:
            raise LedgerNotReady("premium auctions need the ledger's access contract")
        seller = Party(principal.msp_id, principal.fingerprint)
        record = AuctionRecord(
            terms=terms,
            seller=seller,
            open_event_id=event.id,
            state="opening",
            updated_ms=now_ms(),
        )
        if not await self._store.add(record):
            raise taken
        self._opening[terms.channel] = event.id
        try:
            result = await self._store_event(item)
        except BaseException:
            with contextlib.suppress(StoreUnavailable):
                await self._store.remove(terms.auction_id)
            raise
        finally:
            self._opening.pop(terms.channel, None)
        if result.duplicate:
            with contextlib.suppress(StoreUnavailable):
                await self._store.remove(terms.auction_id)
            raise InvalidAuction(f"event id {event.id} is taken: sign the opening with a new id")
        auction = Auction(terms=terms, seller=seller, open_seq=result.stored.seq)
        self.auctions[terms.auction_id] = auction
        self.by_channel[terms.channel] = auction
        self._arm(auction)
        try:
            await self._store.mark_open(record, result.stored.seq, now_ms())
        except StoreUnavailable as exc:
            # The open event is stored: the next start finds it and marks the record open.
            log.warning("auction %s: could not mark it open: %s", terms.auction_id, exc)
        log.info(
            "auction %s open on %s until %d", terms.auction_id, terms.channel, terms.closes_at_ms
        )
        return auction.to_json()

    def _arm(self, auction: Auction) -> None:
        """(Re-)arm the deadline timer; a deadline already past closes at once."""
        delay = max(0.0, (auction.terms.closes_at_ms - now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        previous = self._timers.pop(auction.auction_id, None)
        if previous is not None:
            previous.cancel()
        self._timers[auction.auction_id] = loop.call_later(
            delay, self._on_deadline, auction.auction_id
        )

    def _on_deadline(self, auction_id: str) -> None:
        self._timers.pop(auction_id, None)
        auction = self.auctions.get(auction_id)
        if auction is None:
            return
        # The timer runs on the monotonic clock, the deadline is wall time: never early.
        if now_ms() < auction.terms.closes_at_ms:
            self._arm(auction)
            return
        self._spawn_close(auction_id)

    def _spawn_close(self, auction_id: str) -> None:
        self._spawn(self._close_with_retry(auction_id), f"close-{auction_id}")

    async def _close_with_retry(self, auction_id: str) -> None:
        delay = _RETRY_FIRST_S
        for attempt in range(1, _CLOSE_ATTEMPTS + 1):
            try:
                await self.close_auction(auction_id)
                return
            except AnchorlineError as exc:
                log.warning("close of %s failed (attempt %d): %s", auction_id, attempt, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        log.error("close of %s gave up; it resumes at the next start", auction_id)

    def get(self, auction_id: str) -> Auction:
        auction = self.auctions.get(auction_id)
        if auction is None:
            raise AuctionNotFound(f"no auction {auction_id!r} on this gateway")
        return auction

    async def close_auction(self, auction_id: str) -> dict[str, Any]:
        """Close the auction now (at its deadline, or earlier when called before it):
        refuse further bids, decide the winner once, publish the result once.

        Idempotent: a close already decided (here, by an earlier run of the
        gateway, or by another process) is finished, not decided again.
        """
        auction = self.get(auction_id)
        lock = self._close_locks.setdefault(auction_id, asyncio.Lock())
        async with lock:
            if auction_id in self._close_seqs:
                return auction.to_json()
            timer = self._timers.pop(auction_id, None)
            if timer is not None:
                timer.cancel()
            planned = self._close_events.get(auction_id)
            if planned is None:
                planned = await self._decide(auction)
            await self._authorizer.invalidate(channel=auction.channel)
            seq = 0  # no event without a ledger identity to sign it
            if self.ledger is not None:
                seq = await self._publish_planned(auction.channel, CLOSED_TYPE, planned)
            await self._store.finish_close(auction_id, seq, now_ms())
            self._close_seqs[auction_id] = seq
        log.info("auction %s closed: winner %s", auction_id, planned.payload["winner"])
        return auction.to_json()

    async def _decide(self, auction: Auction) -> PlannedEvent:
        """Decide the winner from the stored bids and record the close (``closing``)."""
        closed_at = min(now_ms(), auction.terms.closes_at_ms)
        # Bids still in the commit queue land before the close is decided.
        await self._pipeline.drain()
        # The store is the truth (bids taken by another process, or before a restart).
        decided = Auction(terms=auction.terms, seller=auction.seller, open_seq=auction.open_seq)
        self._replay(decided, await self._stored_bids(decided))
        winner = decided.close(closed_at)
        counted = [b for b in decided.bids if b.received_ms < closed_at]
        planned = PlannedEvent(
            uuid.uuid4().hex,
            now_ms(),
            {
                "auction_id": auction.auction_id,
                "closed_at": closed_at,
                "bids": len(counted),
                "valid_bids": sum(1 for b in counted if b.valid),
                "winner": winner.to_json() if winner else None,
            },
        )
        recorded = Winner(winner.seq, winner.bidder, winner.amount) if winner else None
        if not await self._store.begin_close(auction.auction_id, recorded, planned, now_ms()):
            # Decided already (another process): adopt that decision.
            stored = await self._store.by_channel(auction.channel)
            if not isinstance(stored, AuctionRecord) or stored.close_event is None:
                raise MarketStateUnknown(
                    f"the close of {auction.auction_id!r} was decided elsewhere and cannot be "
                    "read back"
                )
            planned = stored.close_event
            decided = await self._rebuild(stored)
        self._close_events[auction.auction_id] = planned
        self._take_board(auction, decided)
        return planned

    @staticmethod
    def _take_board(auction: Auction, decided: Auction) -> None:
        """The live board takes the decided bids and winner (live bids after them stay)."""
        last = decided.bids[-1].seq if decided.bids else auction.open_seq
        later: list[Bid] = [b for b in auction.bids if b.seq > last]
        for bid in later:
            bid.valid, bid.reason = False, "received after the auction closed"
        auction.bids = [*decided.bids, *later]
        auction.closed = True
        auction.closed_at_ms = decided.closed_at_ms
        auction.winner = decided.winner

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

    @staticmethod
    def settlement_id_of(auction_id: str) -> str:
        return f"auction-{auction_id}"

    async def settlement_id(self, auction: Auction) -> str:
        return self.settlement_id_of(auction.auction_id)

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
        # The step and its status event are recorded before the event is published, so
        # a restart publishes a missing one with the same id (and no second copy).
        planned = PlannedEvent(uuid.uuid4().hex, now_ms(), step)
        history = [*auction.settlement.get("history", []), {**step, "event": planned.to_json()}]
        auction.settlement = {**step, "history": history}
        try:
            await self._store.set_settlement(auction_id, auction.settlement, now_ms())
        except StoreUnavailable as exc:
            log.warning("could not record settlement status of %s: %s", auction_id, exc)
        await self._republish_settlement(auction_id)

    async def _republish_settlement(self, auction_id: str) -> None:
        auction = self.auctions[auction_id]
        history = auction.settlement.get("history", [])
        changed = False
        for step in history:
            if "seq" in step or not isinstance(step.get("event"), dict):
                continue
            try:
                planned = PlannedEvent.from_json(step["event"])
                step["seq"] = await self._publish_planned(auction.channel, SETTLEMENT_TYPE, planned)
                changed = True
            except (AnchorlineError, ValueError) as exc:
                log.warning("could not publish settlement status of %s: %s", auction_id, exc)
                break
        if changed:
            try:
                await self._store.set_settlement(auction_id, auction.settlement, now_ms())
            except StoreUnavailable as exc:
                log.warning("could not record settlement status of %s: %s", auction_id, exc)

    def auction_json(self, auction: Auction) -> dict[str, Any]:
        """An auction's public state (``to_json``, the settlement without bookkeeping)."""
        body = auction.to_json()
        body["settlement"] = _public_settlement(auction.settlement)
        return body

    async def settlements(
        self,
        principal: Principal,
        *,
        state: str | None = None,
        mine: bool = False,
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page of settlements (auctions closed with a winner), by auction id.

        Only auctions whose channel ``principal`` may read are listed, so a page
        may hold fewer than ``limit``; ``next_after`` is the ``after`` of the
        next page, ``None`` after the last. Read from the database: every
        gateway process answers the same.
        """
        if state is not None and state not in SETTLEMENT_STATES:
            raise InvalidQuery(f"state must be one of {', '.join(SETTLEMENT_STATES)}")
        if not 1 <= limit <= MAX_LISTING:
            raise InvalidQuery(f"limit must be between 1 and {MAX_LISTING}")
        if after is not None and not (0 < len(after) <= 40):
            raise InvalidQuery("after must be an auction id (1-40 characters)")
        records = await self._store.settlements(
            state=state, party=principal.fingerprint if mine else None, after=after, limit=limit
        )
        listed: list[dict[str, Any]] = []
        for record in records:
            if isinstance(record, BrokenRecord):
                log.error("settlement listing skips unreadable auction %s", record.auction_id)
                continue
            if await self._authorizer.allowed(principal, record.terms.channel, Action.READ):
                listed.append(self._settlement_json(record))
        last: str | None = None
        if records and len(records) == limit:
            tail = records[-1]
            last = tail.auction_id if isinstance(tail, BrokenRecord) else tail.terms.auction_id
        return {"settlements": listed, "next_after": last}

    def _settlement_json(self, record: AuctionRecord) -> dict[str, Any]:
        winner = record.winner
        assert winner is not None
        settlement = record.settlement
        return {
            "settlement_id": self.settlement_id_of(record.terms.auction_id),
            "auction_id": record.terms.auction_id,
            "channel": record.terms.channel,
            "asset": record.terms.item,
            "amount": winner.amount,
            "winning_seq": winner.seq,
            "buyer": winner.buyer.to_json(),
            "seller": record.seller.to_json(),
            "state": settlement.get("state", SETTLEMENT_AWAITING),
            "tx_id": settlement.get("tx_id"),
            "block_number": settlement.get("block_number"),
            "updated_at": record.updated_ms,
            "history": _public_steps(settlement),
        }


__all__ = ["ClosedAuctionPolicy", "EventLog", "Identities", "MarketplaceService"]
