"""Marketplace state survives a gateway restart (embedded ledger, the whole gateway app
stopped and started again over the same database and ledger folder).

- restarted mid-auction: bids continue on the new run, the close and each settlement
  step happen once, and a bid on the closed auction is refused after a further restart;
- down across the deadline: the close happens at start, as if the gateway had stayed up;
- stopped between storing the close event and recording it: the next start does not
  store a second close.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import update

from gateway.cli.scenario import wait_finalized, wait_for
from gateway.client import MemberClient
from gateway.client.marketplace import auction_state, bid, each_settlement, open_auction
from gateway.client.settlement import LedgerSigner
from gateway.clock import now_ms
from gateway.config import Settings
from gateway.context import CONTEXT
from gateway.identity.ca import EmbeddedCA
from gateway.store.models import market_auctions
from tests.integration.gateway.support import RunningGateway, running_gateway
from tests.integration.marketplace.support import market_settings


@dataclasses.dataclass
class Cast:
    seller: Path
    ann: Path  # Org2 member
    ben: Path  # Org3 member


def _cast(settings: Settings) -> Cast:
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    return Cast(
        seller=ca.enroll("Org1", "seller", "member"),
        ann=ca.enroll("Org2", "ann", "member"),
        ben=ca.enroll("Org3", "ben", "member"),
    )


@asynccontextmanager
async def gateway_run(settings: Settings) -> AsyncIterator[RunningGateway]:
    """One gateway run; members log in again on each (sessions are per run's secret)."""
    async with running_gateway(settings, EmbeddedCA(settings.embedded_dir / "ca")) as gw:
        yield gw


@asynccontextmanager
async def member(url: str, msp: Path, msp_id: str) -> AsyncIterator[MemberClient]:
    client = MemberClient.from_msp(url, msp, msp_id)
    try:
        await client.login()
        await client.connect()
        yield client
    finally:
        await client.close()


async def _channel_events(gw: RunningGateway, channel: str) -> list[Any]:
    return await gw.app[CONTEXT].events.after(channel, 0, 1000)


def _of_type(events: list[Any], type: str) -> list[Any]:
    return [e for e in events if e.type == type]


async def test_restart_mid_auction_bids_continue_close_and_settlement_happen_once(
    tmp_path: Path,
) -> None:
    settings = market_settings(tmp_path)
    cast = _cast(settings)
    auction_id = "restart-1"
    channel = f"auction-{auction_id}"
    async with gateway_run(settings) as gw, member(gw.url, cast.ann, "Org2MSP") as ann:
        async with member(gw.url, cast.seller, "Org1MSP") as seller:
            closes_at = now_ms() + 6000
            await open_auction(seller, auction_id, item="Lot 9", closes_at_ms=closes_at, reserve=50)
        await ann.join(channel)
        first = await bid(ann, channel, 100)
        assert first.ok and first.status == "pending"

    # Restarted mid-auction: the auction is back, bids continue.
    async with (
        gateway_run(settings) as gw,
        member(gw.url, cast.seller, "Org1MSP") as seller,
        member(gw.url, cast.ann, "Org2MSP") as ann,
        member(gw.url, cast.ben, "Org3MSP") as ben,
    ):
        state = await auction_state(ben, auction_id)
        assert state["state"] == "open" and state["best"]["amount"] == 100
        for c in (seller, ann, ben):
            await c.join(channel)
        winning = await bid(ben, channel, 150)
        assert winning.ok and winning.seq is not None
        assert (await bid(ann, channel, 120)).ok
        _, closed = await wait_for(
            seller, lambda n, d: n == "event" and d.get("type") == "auction.closed", 20
        )
        assert closed["payload"]["winner"]["seq"] == winning.seq
        assert closed["payload"]["closed_at"] == closes_at
        assert closed["payload"]["bids"] == 3

        # Settlement, signed by the parties.
        await wait_finalized(seller, channel, winning.seq, 60)
        buyer = LedgerSigner(ben)
        await buyer.settle(auction_id, "propose")
        await LedgerSigner(seller).settle(auction_id, "accept")
        settled = await buyer.settle(auction_id, "settle")
        listed = [s async for s in each_settlement(ann)]
        assert [(s["auction_id"], s["state"]) for s in listed] == [(auction_id, "Settled")]
        assert listed[0]["tx_id"] == settled["tx_id"]
        assert [s["auction_id"] async for s in each_settlement(ann, mine=True)] == []
        mine = [s async for s in each_settlement(ben, mine=True, state="Settled")]
        assert [s["buyer"]["msp_id"] for s in mine] == ["Org3MSP"]
        await gw.app[CONTEXT].pipeline.drain()
        events = await _channel_events(gw, channel)
        assert len(_of_type(events, "auction.closed")) == 1
        assert len(_of_type(events, "settlement.status")) == 3

    # A further restart changes nothing and refuses a late bid.
    async with gateway_run(settings) as gw, member(gw.url, cast.ann, "Org2MSP") as ann:
        await ann.join(channel)
        late = await bid(ann, channel, 500)
        assert not late.ok and late.error is not None and late.error["code"] == "AL1511"
        state = await auction_state(ann, auction_id)
        assert state["state"] == "closed" and state["winner"]["seq"] == winning.seq
        assert state["settlement"]["state"] == "Settled"
        events = await _channel_events(gw, channel)
        assert len(_of_type(events, "auction.closed")) == 1
        assert len(_of_type(events, "settlement.status")) == 3
        (listed_again,) = [s async for s in each_settlement(ann, state="Settled")]
        assert listed_again["history"] == listed[0]["history"]


async def test_down_across_the_deadline_the_close_happens_at_start_once(
    tmp_path: Path,
) -> None:
    settings = market_settings(tmp_path)
    cast = _cast(settings)
    auction_id = "down-1"
    channel = f"auction-{auction_id}"
    async with gateway_run(settings) as gw, member(gw.url, cast.seller, "Org1MSP") as seller:
        closes_at = now_ms() + 2500
        await open_auction(seller, auction_id, item="Lot 3", closes_at_ms=closes_at, reserve=5)
        async with member(gw.url, cast.ann, "Org2MSP") as ann:
            await ann.join(channel)
            placed = await bid(ann, channel, 70)
            assert placed.ok
    # Down for longer than the auction had left (starting the next run takes a while too).
    await asyncio.sleep(max(0.0, (closes_at + 500 - now_ms()) / 1000))
    async with gateway_run(settings) as gw, member(gw.url, cast.ann, "Org2MSP") as ann:
        await gw.app[CONTEXT].pipeline.drain()
        state = await _wait_closed(ann, auction_id)
        assert state["winner"]["seq"] == placed.seq and state["closed_at"] == closes_at
        await ann.join(channel)
        late = await bid(ann, channel, 80)
        assert late.error is not None and late.error["code"] == "AL1511"
        (closed,) = _of_type(await _channel_events(gw, channel), "auction.closed")
        assert closed.payload["closed_at"] == closes_at
        assert closed.payload["winner"]["amount"] == 70


async def test_a_close_stopped_after_storing_its_event_is_not_done_twice(
    tmp_path: Path,
) -> None:
    settings = market_settings(tmp_path)
    cast = _cast(settings)
    auction_id = "half-1"
    channel = f"auction-{auction_id}"
    async with gateway_run(settings) as gw, member(gw.url, cast.seller, "Org1MSP") as seller:
        closes_at = now_ms() + 1500
        await open_auction(seller, auction_id, item="Lot 5", closes_at_ms=closes_at, reserve=5)
        await seller.join(channel)
        await wait_for(seller, lambda n, d: n == "event" and d.get("type") == "auction.closed", 15)
        (first,) = _of_type(await _channel_events(gw, channel), "auction.closed")
        # What a gateway that died after storing the close event, before recording it, leaves.
        async with gw.app[CONTEXT].engine.begin() as conn:
            await conn.execute(
                update(market_auctions)
                .where(market_auctions.c.auction_id == auction_id)
                .values(state="closing", close_seq=None)
            )
    async with gateway_run(settings) as gw:
        engine = gw.app[CONTEXT].engine
        for _ in range(200):  # at most ~20 s for the start to finish the close
            async with engine.begin() as conn:
                row = (
                    await conn.execute(
                        market_auctions.select().where(market_auctions.c.auction_id == auction_id)
                    )
                ).one()
            if row.state == "closed":
                break
            await asyncio.sleep(0.1)
        assert (row.state, row.close_seq) == ("closed", first.seq)
        await gw.app[CONTEXT].pipeline.drain()
        (again,) = _of_type(await _channel_events(gw, channel), "auction.closed")
        assert (again.seq, again.id) == (first.seq, first.id)


async def _wait_closed(client: MemberClient, auction_id: str) -> dict[str, Any]:
    for _ in range(200):  # at most ~20 s
        state = await auction_state(client, auction_id)
        if state["state"] == "closed":
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"auction {auction_id} did not close")


async def test_emits_into_an_auction_channel_of_unknown_state_are_refused(
    tmp_path: Path,
) -> None:
    settings = market_settings(tmp_path)
    cast = _cast(settings)
    async with gateway_run(settings) as gw, member(gw.url, cast.seller, "Org1MSP") as seller:
        closes_at = now_ms() + 60_000
        await open_auction(seller, "blurred", item="Lot 1", closes_at_ms=closes_at, reserve=5)
        async with gw.app[CONTEXT].engine.begin() as conn:
            # A row the next start cannot read back (as after a botched manual edit).
            await conn.execute(
                update(market_auctions)
                .where(market_auctions.c.auction_id == "blurred")
                .values(state="unheard-of")
            )
    async with gateway_run(settings) as gw, member(gw.url, cast.ann, "Org2MSP") as ann:
        await ann.join("auction-blurred")
        refused = await bid(ann, "auction-blurred", 50)
        assert refused.error is not None and refused.error["code"] == "AL1912", refused
        # A channel named like an auction's, with no auction behind it.
        await ann.join("auction-nobody")
        missing = await bid(ann, "auction-nobody", 50)
        assert missing.error is not None and missing.error["code"] == "AL1901", missing
        events = await _channel_events(gw, "auction-blurred")
        assert [e.type for e in events] == ["auction.open"]
