"""Auctions as live channels: terms, bids, the deadline and the winner (pure domain, no I/O).

An auction lives on its own channel ``auction-<id>`` (or ``premium-<id>``
when it needs an on-chain grant). The seller opens it with a signed
``auction.open`` event whose payload is :class:`Terms`; members bid with
signed ``bid`` events ``{"amount": <positive integer, minor units>}``. A bid
counts when it was stored before the deadline, is at least the reserve, and
does not come from the seller. At the deadline the highest counted bid wins
(the earlier one on a tie).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

from gateway.marketplace.errors import InvalidAuction, InvalidBid

OPEN_TYPE: Final = "auction.open"
BID_TYPE: Final = "bid"
CLOSED_TYPE: Final = "auction.closed"
SETTLEMENT_TYPE: Final = "settlement.status"
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")
_MAX_AMOUNT: Final = 10**15
#: Longest auction the gateway runs.
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000
#: Channels that carry auctions: an event is accepted into one only while its auction
#: is known to the gateway (see :meth:`gateway.marketplace.service.MarketplaceService.admit`).
AUCTION_CHANNEL_PREFIXES: Final = ("auction-", "premium-")


@dataclasses.dataclass(frozen=True)
class Party:
    """A member as the ledger names it: MSP id and certificate fingerprint."""

    msp_id: str
    fingerprint: str

    def to_json(self) -> dict[str, str]:
        return {"msp_id": self.msp_id, "fingerprint": self.fingerprint}


@dataclasses.dataclass(frozen=True)
class Terms:
    """What the seller signs when opening an auction."""

    auction_id: str
    item: str
    reserve: int
    closes_at_ms: int
    premium: bool

    @property
    def channel(self) -> str:
        return channel_of(self.auction_id, self.premium)

    def to_json(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "item": self.item,
            "reserve": self.reserve,
            "closes_at": self.closes_at_ms,
            "premium": self.premium,
        }


def channel_of(auction_id: str, premium: bool) -> str:
    return f"{'premium' if premium else 'auction'}-{auction_id}"


def is_auction_channel(channel: str) -> bool:
    """Whether ``channel`` is named like an auction's (``auction-<id>``, ``premium-<id>``)."""
    return channel.startswith(AUCTION_CHANNEL_PREFIXES)


def _amount(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_AMOUNT:
        raise InvalidBid(f"{field} must be a positive integer (minor units) up to {_MAX_AMOUNT}")
    return value


def parse_terms(payload: object, *, channel: str, now_ms: int) -> Terms:
    """The terms of an ``auction.open`` payload; raises :class:`InvalidAuction`."""
    if not isinstance(payload, dict):
        raise InvalidAuction("auction.open payload must be an object")
    allowed = {"auction_id", "item", "reserve", "closes_at", "premium"}
    extra = set(payload) - allowed
    if extra:
        raise InvalidAuction(f"unknown auction field(s): {', '.join(sorted(map(str, extra)))}")
    auction_id = payload.get("auction_id")
    if not isinstance(auction_id, str) or not _ID_RE.match(auction_id):
        raise InvalidAuction("auction_id must be 1-40 characters of A-Z a-z 0-9 _ -")
    item = payload.get("item")
    if not isinstance(item, str) or not 1 <= len(item) <= 200 or not item.isprintable():
        raise InvalidAuction("item must be 1-200 printable characters")
    reserve = payload.get("reserve", 1)
    try:
        reserve = _amount(reserve, "reserve")
    except InvalidBid as exc:
        raise InvalidAuction(exc.message) from None
    closes_at = payload.get("closes_at")
    if not isinstance(closes_at, int) or isinstance(closes_at, bool):
        raise InvalidAuction("closes_at must be a time in milliseconds since the epoch")
    if closes_at <= now_ms:
        raise InvalidAuction("closes_at is in the past: choose a deadline in the future")
    if closes_at - now_ms > MAX_DURATION_MS:
        raise InvalidAuction("an auction may run at most 7 days")
    premium = payload.get("premium", False)
    if not isinstance(premium, bool):
        raise InvalidAuction("premium must be true or false")
    terms = Terms(auction_id, item, reserve, closes_at, premium)
    if terms.channel != channel:
        raise InvalidAuction(f"an auction {auction_id!r} is opened on channel {terms.channel!r}")
    return terms


def parse_bid(payload: object) -> int:
    """The amount of a ``bid`` payload; raises :class:`InvalidBid`."""
    if not isinstance(payload, dict) or set(payload) - {"amount", "note"}:
        raise InvalidBid('a bid payload is {"amount": <positive integer>} (optionally "note")')
    return _amount(payload.get("amount"), "amount")


@dataclasses.dataclass
class Bid:
    seq: int
    event_id: str
    bidder: Party
    amount: int
    received_ms: int
    valid: bool
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.event_id,
            "bidder": self.bidder.to_json(),
            "amount": self.amount,
            "received_at": self.received_ms,
            "valid": self.valid,
            "reason": self.reason,
        }


@dataclasses.dataclass
class Auction:
    """One auction's state as the gateway sees it."""

    terms: Terms
    seller: Party
    open_seq: int
    bids: list[Bid] = dataclasses.field(default_factory=list)
    closed: bool = False
    closed_at_ms: int | None = None
    winner: Bid | None = None
    settlement: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def auction_id(self) -> str:
        return self.terms.auction_id

    @property
    def channel(self) -> str:
        return self.terms.channel

    def best(self) -> Bid | None:
        """The highest valid bid so far (earliest on a tie)."""
        best: Bid | None = None
        for bid in self.bids:
            if bid.valid and (best is None or bid.amount > best.amount):
                best = bid
        return best

    def record_bid(
        self, *, seq: int, event_id: str, bidder: Party, payload: object, received_ms: int
    ) -> Bid:
        """Record a stored bid event, deciding whether it counts."""
        try:
            amount = parse_bid(payload)
            reason = ""
        except InvalidBid as exc:
            amount, reason = 0, exc.message
        if not reason and (self.closed or received_ms >= self.terms.closes_at_ms):
            reason = "received after the auction closed"
        if not reason and bidder == self.seller:
            reason = "the seller may not bid on their own auction"
        if not reason and amount < self.terms.reserve:
            reason = f"below the reserve of {self.terms.reserve}"
        bid = Bid(seq, event_id, bidder, amount, received_ms, valid=not reason, reason=reason)
        self.bids.append(bid)
        return bid

    def close(self, now_ms: int) -> Bid | None:
        """Close the auction at ``now_ms`` (idempotent); the winning bid, if any.

        A bid received at or after ``now_ms`` does not count (it matters when an
        auction is closed before its deadline).
        """
        if not self.closed:
            for bid in self.bids:
                if bid.valid and bid.received_ms >= now_ms:
                    bid.valid, bid.reason = False, "received after the auction closed"
            self.closed = True
            self.closed_at_ms = now_ms
            self.winner = self.best()
        return self.winner

    def to_json(self) -> dict[str, Any]:
        best = self.best()
        return {
            **self.terms.to_json(),
            "channel": self.channel,
            "seller": self.seller.to_json(),
            "open_seq": self.open_seq,
            "state": "closed" if self.closed else "open",
            "closed_at": self.closed_at_ms,
            "bids": len(self.bids),
            "best": best.to_json() if best else None,
            "winner": self.winner.to_json() if self.winner else None,
            "settlement": dict(self.settlement),
        }
