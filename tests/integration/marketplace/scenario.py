"""The marketplace reference scenario, run against whichever ledger the gateway uses.

``run_scenario(gw_url, ids, inspect)``: a seller (Org1) opens an auction,
members of Org2 and Org3 bid over Socket.IO, the auction closes at its
deadline, the winner and the seller settle through chaincode with
transactions they sign themselves, and an Org1 admin grants and revokes a
premium room. ``inspect`` reads the ledger with an identity of the test's
own (``GetSettlement``), not through the gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.client import GatewayRefused, MemberClient
from gateway.client.marketplace import auction_channel, auction_state, bid, open_auction
from gateway.client.member import sign_event
from gateway.client.settlement import LedgerSigner

Inspect = Callable[[str, str], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class Members:
    seller: tuple[Path, str]  # Org1 member
    bidder2: tuple[Path, str]  # Org2 member
    bidder3: tuple[Path, str]  # Org3 member
    admin1: tuple[Path, str]  # Org1 admin
    auditor: tuple[Path, str]  # Org3 auditor


async def _client(url: str, who: tuple[Path, str]) -> MemberClient:
    client = MemberClient.from_msp(url, who[0], who[1])
    await client.login()
    await client.connect()
    return client


async def wait_for(
    client: MemberClient, pred: Callable[[str, Any], bool], timeout: float = 30.0
) -> tuple[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("expected server event did not arrive")
        name, data = await client.next_event(timeout=left)
        if pred(name, data):
            return name, data


async def wait_finalized(
    client: MemberClient, channel: str, seq: int, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            proof: dict[str, Any] = await client.get(f"/events/{channel}/{seq}/proof")
            if proof.get("status") == "finalized":
                return proof
        except GatewayRefused:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{channel}/{seq} was not finalized in {timeout} s")
        await asyncio.sleep(0.2)


@dataclasses.dataclass
class Outcome:
    refusals: dict[str, str]
    settlement_record: dict[str, Any]
    party_fingerprints: dict[str, str]
    settlement_events: list[dict[str, Any]]
    kick_latency_s: float
    revoke_round_trip_s: float
    closed_event: dict[str, Any]


async def run_scenario(
    url: str, m: Members, inspect: Inspect, *, auction_s: float = 3.0
) -> Outcome:
    refusals: dict[str, str] = {}
    seller = await _client(url, m.seller)
    b2 = await _client(url, m.bidder2)
    b3 = await _client(url, m.bidder3)
    admin = await _client(url, m.admin1)
    try:
        auction_id = f"lot{int(time.time() * 1000) % 10**9}"
        channel = auction_channel(auction_id)
        closes_at = int(time.time() * 1000 + auction_s * 1000)
        opened = await open_auction(
            seller,
            auction_id,
            item="Lot 7: 40 t copper cathode",
            closes_at_ms=closes_at,
            reserve=50,
        )
        assert opened["state"] == "open" and opened["channel"] == channel
        for c in (seller, b2, b3):
            await c.join(channel)

        acks = [
            await bid(b2, channel, 100),
            await bid(b3, channel, 150),
            await bid(b2, channel, 120),
        ]
        assert all(a.ok and a.status == "pending" for a in acks), acks
        winning_seq = acks[1].seq
        assert winning_seq is not None

        # A bid signed with another member's key on bidder2's session.
        forged = sign_event(b3.signer, channel=channel, type="bid", payload={"amount": 10_000})
        ack = await b2.emit_signed(forged)
        assert not ack.ok and ack.error is not None
        refusals["foreign_key"] = str(ack.error["code"])

        _, closed = await wait_for(
            seller,
            lambda n, d: n == "event" and d.get("type") == "auction.closed",
            timeout=auction_s + 15,
        )
        late = await bid(b3, channel, 500)
        assert not late.ok and late.error is not None
        refusals["after_close"] = str(late.error["code"])
        state = await auction_state(seller, auction_id)
        assert state["state"] == "closed"
        assert state["winner"]["seq"] == winning_seq and state["winner"]["amount"] == 150

        await wait_finalized(b3, channel, winning_seq)

        buyer_ledger, seller_ledger, other_ledger = (
            LedgerSigner(b3),
            LedgerSigner(seller),
            LedgerSigner(b2),
        )
        proposed = await buyer_ledger.settle(auction_id, "propose")
        try:
            await other_ledger.settle(auction_id, "accept", any_party=True)
        except GatewayRefused as exc:
            refusals["non_party_accept"] = exc.message
        else:
            raise AssertionError("a non-party's accept was not refused")
        accepted = await seller_ledger.settle(auction_id, "accept")
        settled = await buyer_ledger.settle(auction_id, "settle")
        tx_ids = [proposed["tx_id"], accepted["tx_id"], settled["tx_id"]]

        events: list[dict[str, Any]] = []
        while len(events) < 3:
            _, data = await wait_for(
                b2, lambda n, d: n == "event" and d.get("type") == "settlement.status"
            )
            events.append(data["payload"])
        assert [e["tx_id"] for e in events] == tx_ids
        record = await inspect("settlement:GetSettlement", f"auction-{auction_id}")

        # The premium room: granted by an Org1 admin on-chain, then revoked.
        room = f"premium-{auction_id}"
        admin_ledger = LedgerSigner(admin)
        await admin_ledger.transact("access:RegisterChannel", [room])
        assert b2.session is not None and b3.session is not None
        grant = json.dumps(
            {
                "channel": room,
                "subject": {"kind": "fingerprint", "value": b2.session.fingerprint},
                "expires_at": "2099-01-01T00:00:00Z",
            }
        )
        await admin_ledger.transact("access:GrantAccess", [grant])
        await b2.join(room)
        try:
            await b3.join(room)
        except GatewayRefused as exc:
            refusals["premium_without_grant"] = exc.remote_code
        else:
            raise AssertionError("a member without a grant joined the premium room")

        async def kicked() -> float:
            await wait_for(b2, lambda n, d: n == "kicked" and d.get("channel") == room, timeout=10)
            return time.monotonic()

        # The kick follows the AccessRevoked chaincode event; it must come no later than a
        # second after the revocation is committed (when transact returns).
        watcher = asyncio.create_task(kicked())
        submitted = time.monotonic()
        await admin_ledger.transact(
            "access:RevokeAccess", [room, f"fingerprint:{b2.session.fingerprint}"]
        )
        committed = time.monotonic()
        kicked_at = await watcher
        latency = kicked_at - committed
        revoke_round_trip = committed - submitted
        return Outcome(
            refusals=refusals,
            settlement_record=record,
            party_fingerprints={
                "buyer": b3.session.fingerprint,
                "seller": seller.session.fingerprint if seller.session else "",
            },
            settlement_events=events,
            kick_latency_s=latency,
            revoke_round_trip_s=revoke_round_trip,
            closed_event=closed,
        )
    finally:
        for c in (seller, b2, b3, admin):
            await c.close()
