"""The design's reference scenario, the live auction, as the members' apps play it.

One definition, used by ``anchorline demo`` and by the marketplace integration
tests (embedded ledger and Fabric). It drives the member client library only
(``gateway.client``) and the auditor's offline verifier, never the server, so
it runs against any gateway URL:

1. a seller (Org1) opens an auction; members of Org2 and Org3 bid over
   Socket.IO, each bid acknowledged ``pending``: scripted bids, or simulated
   bidders until shortly before the close;
2. a bid signed with another member's key is refused;
3. the auction closes at its deadline (pushed live), a late bid is refused,
   the highest bid wins;
4. the winning bid is finalized (anchored and read back);
5. the buyer and the seller settle with transactions they sign themselves;
   a bidder who is not a party cannot accept; every settlement step is pushed
   live to the other bidders; ``inspect`` (optional) reads the settlement from
   the ledger with an identity of the caller's own;
6. an Org1 admin registers a premium room and grants one bidder access
   on-chain; another is refused; the revocation kicks the first out;
7. the auditor (Org3) verifies a random valid bid's proof offline.

Anything other than the design's promise raises :class:`ScenarioFailed`.
:class:`Outcome` gives callers what they check or print.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.anchoring.proof import EventProof, Verdict, verify_offline
from gateway.client import GatewayRefused, MemberClient, sign_event
from gateway.client.marketplace import auction_channel, auction_state, bid, open_auction
from gateway.client.settlement import LedgerSigner
from gateway.clock import now_ms
from gateway.identity.certificates import TrustStore

Identity = tuple[Path, str]  # (MSP folder, MSP id)
Inspect = Callable[[str, str], Awaitable[dict[str, Any]]]
Report = Callable[[str, str], None]  # (step, text)


class ScenarioFailed(RuntimeError):
    """The gateway or the ledger did something other than what the design promises.

    A RuntimeError, so ``anchorline demo`` reports it as a failed run, and a test
    running the scenario fails with its message.
    """


@dataclasses.dataclass(frozen=True)
class Cast:
    seller: Identity  # an Org1 member
    bidders: Mapping[str, Identity]  # by name, at least two, members of Org2 and Org3
    admin: Identity  # an Org1 admin: registers, grants and revokes the premium room
    auditor: Identity  # an Org3 auditor: verifies a bid's proof offline


@dataclasses.dataclass(frozen=True)
class Plan:
    auction_s: float = 3.0
    reserve: int = 50
    item: str = "Lot 7: 40 t copper cathode"
    # (bidder, amount) in order; empty: simulated bidders, random raises from the reserve.
    script: Sequence[tuple[str, int]] = ()
    finalize_timeout_s: float = 60.0
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    auction_id: str
    channel: str
    bids_placed: int
    winner: str  # the bidder's name in the cast
    winning_amount: int
    winning_seq: int
    closed_event: dict[str, Any]
    # Error codes (or the chaincode's message, for non_party_accept) of each refusal.
    refusals: dict[str, str]
    anchor_block: int
    settlements: list[dict[str, Any]]  # propose, accept, settle as the ledger returned them
    settlement_events: list[dict[str, Any]]  # as pushed to another bidder
    settlement_record: dict[str, Any] | None  # from ``inspect``; None without it
    party_fingerprints: dict[str, str]  # buyer, seller
    kick_latency_s: float  # from the revocation's commit to the kick
    revoke_round_trip_s: float
    audited_seq: int
    audited_proof: dict[str, Any]
    verdict: Verdict


def _quiet(_step: str, _text: str) -> None:
    pass


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioFailed(what)


async def wait_for(
    client: MemberClient, pred: Callable[[str, Any], bool], timeout: float = 30.0
) -> tuple[str, Any]:
    """The first server event ``(name, data)`` matching ``pred``; others are dropped."""
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
    """The event's proof once its status is ``finalized``; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            proof: dict[str, Any] = await client.get(f"/events/{channel}/{seq}/proof")
            if proof.get("status") == "finalized":
                return proof
        except GatewayRefused:
            pass  # not batched yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"{channel}/{seq} was not finalized in {timeout} s")
        await asyncio.sleep(0.2)


async def _client(url: str, who: Identity) -> MemberClient:
    client = MemberClient.from_msp(url, who[0], who[1])
    await client.login()
    await client.connect()
    return client


async def run_scenario(
    url: str,
    cast: Cast,
    trust: TrustStore,
    *,
    plan: Plan = Plan(),
    inspect: Inspect | None = None,
    report: Report = _quiet,
) -> Outcome:
    """Play the scenario against the gateway at ``url``; ``trust``: the channel's MSPs."""
    _require(len(cast.bidders) >= 2, "the scenario needs at least two bidders")
    rng = random.Random(plan.seed)  # noqa: S311 - simulated bidders, not secrets
    seller = await _client(url, cast.seller)
    bidders: dict[str, MemberClient] = {}
    admin: MemberClient | None = None
    auditor: MemberClient | None = None
    try:
        for name, who in cast.bidders.items():
            bidders[name] = await _client(url, who)
        admin = await _client(url, cast.admin)
        auditor = await _client(url, cast.auditor)
        return await _play(cast, trust, plan, inspect, report, rng, seller, bidders, admin, auditor)
    finally:
        for c in (seller, *bidders.values(), admin, auditor):
            if c is not None:
                await c.close()


async def _play(
    cast: Cast,
    trust: TrustStore,
    plan: Plan,
    inspect: Inspect | None,
    report: Report,
    rng: random.Random,
    seller: MemberClient,
    bidders: dict[str, MemberClient],
    admin: MemberClient,
    auditor: MemberClient,
) -> Outcome:
    names = list(bidders)
    refusals: dict[str, str] = {}

    # 1. Open, join, bid.
    auction_id = f"lot-{now_ms() % 10**9}"
    channel = auction_channel(auction_id)
    closes_at = now_ms() + int(plan.auction_s * 1000)
    opened = await open_auction(
        seller, auction_id, item=plan.item, closes_at_ms=closes_at, reserve=plan.reserve
    )
    _require(opened["state"] == "open" and opened["channel"] == channel, f"opened: {opened}")
    report(
        "auction",
        f"{auction_id} open on channel {channel} for {plan.auction_s:.0f} s "
        f"(seller Org1, reserve {plan.reserve})",
    )
    for c in (seller, *bidders.values()):
        await c.join(channel)

    placed: list[tuple[int, int, str]] = []  # (amount, seq, bidder)

    async def place(name: str, amount: int) -> None:
        ack = await bid(bidders[name], channel, amount)
        report("bid", f"{name} ({cast.bidders[name][1]}) bids {amount}: seq {ack.seq} {ack.status}")
        if not ack.ok or ack.status != "pending" or ack.seq is None:
            raise ScenarioFailed(f"bid not acknowledged pending: {ack}")
        placed.append((amount, ack.seq, name))

    if plan.script:
        for name, amount in plan.script:
            await place(name, amount)
    else:
        price = plan.reserve
        while now_ms() < closes_at - 800:
            price += rng.randint(5, 60)
            await place(rng.choice(names), price)
            await asyncio.sleep(rng.uniform(0.3, 0.9))
    if not placed:
        raise ScenarioFailed("no bid was placed before the close")
    # The highest amount wins; of equal ones, the first.
    top = max(placed, key=lambda b: (b[0], -b[1]))

    # 2. A bid signed with another member's key, on the first bidder's session.
    forger, victim = bidders[names[0]], bidders[names[1]]
    forged = sign_event(victim.signer, channel=channel, type="bid", payload={"amount": 10_000})
    ack = await forger.emit_signed(forged)
    if ack.ok or ack.error is None:
        raise ScenarioFailed("a bid signed with another member's key was accepted")
    refusals["foreign_key"] = str(ack.error["code"])
    report("bid", f"a bid signed with another member's key is refused: {ack.error['code']}")

    # 3. The close, pushed live; a late bid; the winner.
    _, closed = await wait_for(
        seller,
        lambda n, d: n == "event" and d.get("type") == "auction.closed",
        timeout=plan.auction_s + 15,
    )
    late = await bid(bidders[names[1]], channel, top[0] + 1000)
    if late.ok or late.error is None:
        raise ScenarioFailed("a bid after the close was accepted")
    refusals["after_close"] = str(late.error["code"])
    state = await auction_state(seller, auction_id)
    winner = state["winner"]
    _require(state["state"] == "closed", f"auction state {state['state']}")
    _require(
        winner["seq"] == top[1] and winner["amount"] == top[0],
        f"winner {winner}, expected seq {top[1]} at {top[0]}",
    )
    win_name = top[2]
    report(
        "close",
        f"closed with {len(placed)} bids: {win_name} wins at {winner['amount']} "
        f"(seq {winner['seq']})",
    )
    report("close", f"a bid after the close is refused: {late.error['code']}")

    # 4. The winning bid anchored.
    proof = await wait_finalized(seller, channel, top[1], plan.finalize_timeout_s)
    report(
        "anchor",
        f"winning bid finalized in block {proof['anchor']['block_number']} "
        f"(batch {proof['batch']['batch_id']})",
    )

    # 5. Settlement, signed by the parties; a non-party's accept is refused.
    buyer_client = bidders[win_name]
    observer_name = next(n for n in names if n != win_name)
    observer = bidders[observer_name]
    buyer, seller_ledger = LedgerSigner(buyer_client), LedgerSigner(seller)
    settlements = [await buyer.settle(auction_id, "propose")]
    try:
        await LedgerSigner(observer).settle(auction_id, "accept", any_party=True)
    except GatewayRefused as exc:
        refusals["non_party_accept"] = exc.message
    else:
        raise ScenarioFailed("a non-party's accept was not refused")
    settlements.append(await seller_ledger.settle(auction_id, "accept"))
    settlements.append(await buyer.settle(auction_id, "settle"))
    for action, out in zip(("propose", "accept", "settle"), settlements, strict=True):
        who = "seller" if action == "accept" else "buyer"
        report(
            "settle",
            f"{action:<7} signed by {who}: tx {out['tx_id'][:16]}… block {out['block_number']}",
        )
    events: list[dict[str, Any]] = []
    while len(events) < 3:
        _, data = await wait_for(
            observer, lambda n, d: n == "event" and d.get("type") == "settlement.status"
        )
        events.append(data["payload"])
    _require(
        [e["tx_id"] for e in events] == [s["tx_id"] for s in settlements],
        "the settlement statuses pushed live are not the three transactions",
    )
    record = None
    if inspect is not None:
        record = await inspect("settlement:GetSettlement", f"auction-{auction_id}")

    # 6. The premium room: granted by an Org1 admin on-chain, then revoked.
    room = f"premium-{auction_id}"
    admin_ledger = LedgerSigner(admin)
    await admin_ledger.transact("access:RegisterChannel", [room])
    if observer.session is None or buyer_client.session is None:
        raise ScenarioFailed("a bidder has no session")
    grant = json.dumps(
        {
            "channel": room,
            "subject": {"kind": "fingerprint", "value": observer.session.fingerprint},
            "expires_at": "2099-01-01T00:00:00Z",
        }
    )
    await admin_ledger.transact("access:GrantAccess", [grant])
    await observer.join(room)
    try:
        await buyer_client.join(room)
    except GatewayRefused as exc:
        refusals["premium_without_grant"] = exc.remote_code
    else:
        raise ScenarioFailed("a member without a grant joined the premium room")

    async def kicked() -> float:
        await wait_for(observer, lambda n, d: n == "kicked" and d.get("channel") == room, 10)
        return time.monotonic()

    # The kick follows the AccessRevoked chaincode event; it must come no later than a
    # second after the revocation is committed (when transact returns).
    watcher = asyncio.create_task(kicked())
    submitted = time.monotonic()
    await admin_ledger.transact(
        "access:RevokeAccess", [room, f"fingerprint:{observer.session.fingerprint}"]
    )
    committed = time.monotonic()
    kick_latency = await watcher - committed
    report(
        "access",
        f"{observer_name} granted {room} by the Org1 admin, {win_name} refused; revoked: "
        f"kicked {kick_latency * 1000:+.0f} ms after the commit",
    )

    # 7. The auditor checks a random valid bid offline.
    detail = await auditor.get(f"/marketplace/auctions/{auction_id}")
    pick = rng.choice([b for b in detail["bid_list"] if b["valid"]])
    audited = await wait_finalized(auditor, channel, pick["seq"], plan.finalize_timeout_s)
    verdict = verify_offline(EventProof.from_json(audited), trust)
    report(
        "audit",
        f"auditor (Org3) checks bid seq {pick['seq']} offline: "
        + ("VERIFIED" if verdict.ok else "FAILED " + verdict.summary()),
    )
    for check in verdict.checks:
        report("audit", f"  {'ok ' if check.ok else 'FAIL'} {check.name}")

    seller_fp = seller.session.fingerprint if seller.session else ""
    return Outcome(
        auction_id=auction_id,
        channel=channel,
        bids_placed=len(placed),
        winner=win_name,
        winning_amount=int(winner["amount"]),
        winning_seq=int(winner["seq"]),
        closed_event=closed,
        refusals=refusals,
        anchor_block=int(proof["anchor"]["block_number"]),
        settlements=settlements,
        settlement_events=events,
        settlement_record=record,
        party_fingerprints={"buyer": buyer_client.session.fingerprint, "seller": seller_fp},
        kick_latency_s=kick_latency,
        revoke_round_trip_s=committed - submitted,
        audited_seq=int(pick["seq"]),
        audited_proof=audited,
        verdict=verdict,
    )
