"""Auction terms, bid validity and the winner (pure domain)."""

from __future__ import annotations

import pytest

from gateway.marketplace.auctions import Auction, Party, parse_bid, parse_terms
from gateway.marketplace.errors import InvalidAuction, InvalidBid

NOW = 1_764_000_000_000
SELLER = Party("Org1MSP", "a" * 64)
B2 = Party("Org2MSP", "b" * 64)
B3 = Party("Org3MSP", "c" * 64)


def _terms(**over: object) -> dict[str, object]:
    return {
        "auction_id": "lot-7",
        "item": "copper",
        "reserve": 100,
        "closes_at": NOW + 5000,
        **over,
    }


def _auction() -> Auction:
    return Auction(parse_terms(_terms(), channel="auction-lot-7", now_ms=NOW), SELLER, open_seq=1)


def test_terms_parse_and_name_their_channel() -> None:
    terms = parse_terms(_terms(premium=True), channel="premium-lot-7", now_ms=NOW)
    assert (terms.auction_id, terms.reserve, terms.premium) == ("lot-7", 100, True)
    assert terms.channel == "premium-lot-7"


@pytest.mark.parametrize(
    ("over", "channel", "fragment"),
    [
        ({"closes_at": NOW - 1}, "auction-lot-7", "in the past"),
        ({"closes_at": NOW + 8 * 24 * 3600 * 1000}, "auction-lot-7", "7 days"),
        ({"auction_id": "no spaces"}, "auction-no spaces", "auction_id"),
        ({"reserve": 0}, "auction-lot-7", "positive integer"),
        ({"reserve": True}, "auction-lot-7", "positive integer"),
        ({"item": ""}, "auction-lot-7", "item"),
        ({"extra": 1}, "auction-lot-7", "unknown auction field"),
        ({}, "auction-other", "opened on channel"),
    ],
)
def test_bad_terms_are_refused(over: dict[str, object], channel: str, fragment: str) -> None:
    with pytest.raises(InvalidAuction, match=fragment):
        parse_terms(_terms(**over), channel=channel, now_ms=NOW)


@pytest.mark.parametrize(
    "payload", [{"amount": 0}, {"amount": 1.5}, {"amount": "10"}, [], {"x": 1}]
)
def test_bad_bid_payloads_are_refused(payload: object) -> None:
    with pytest.raises(InvalidBid):
        parse_bid(payload)


def test_highest_valid_bid_wins_earliest_on_a_tie() -> None:
    auction = _auction()
    auction.record_bid(seq=2, event_id="a", bidder=B2, payload={"amount": 150}, received_ms=NOW)
    auction.record_bid(seq=3, event_id="b", bidder=B3, payload={"amount": 200}, received_ms=NOW)
    auction.record_bid(seq=4, event_id="c", bidder=B2, payload={"amount": 200}, received_ms=NOW)
    winner = auction.close(NOW + 5000)
    assert winner is not None and (winner.seq, winner.amount, winner.bidder) == (3, 200, B3)
    assert auction.to_json()["state"] == "closed"


def test_bids_that_do_not_count() -> None:
    auction = _auction()
    below = auction.record_bid(
        seq=2, event_id="a", bidder=B2, payload={"amount": 99}, received_ms=NOW
    )
    own = auction.record_bid(
        seq=3, event_id="b", bidder=SELLER, payload={"amount": 500}, received_ms=NOW
    )
    late = auction.record_bid(
        seq=4, event_id="c", bidder=B3, payload={"amount": 900}, received_ms=NOW + 5000
    )
    junk = auction.record_bid(
        seq=5, event_id="d", bidder=B3, payload={"amount": -1}, received_ms=NOW
    )
    assert [b.valid for b in (below, own, late, junk)] == [False] * 4
    assert "reserve" in below.reason and "seller" in own.reason and "closed" in late.reason
    assert auction.close(NOW + 6000) is None


def test_a_bid_recorded_after_close_never_changes_the_winner() -> None:
    auction = _auction()
    auction.record_bid(seq=2, event_id="a", bidder=B2, payload={"amount": 150}, received_ms=NOW)
    first = auction.close(NOW + 100)
    after = auction.record_bid(
        seq=3, event_id="b", bidder=B3, payload={"amount": 999}, received_ms=NOW + 200
    )
    assert not after.valid
    assert auction.close(NOW + 300) is first
