"""The auction repository on SQLite and PostgreSQL: one close decided per auction,
the settlement listing's filters and pages, unreadable rows reported, not hidden."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.marketplace.auctions import Party, Terms
from gateway.marketplace.records import AuctionRecord, BrokenRecord, PlannedEvent, Winner
from gateway.store.auctions import AuctionRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.models import market_auctions

SELLER = Party("Org1MSP", "fp-seller")
ANN = Party("Org2MSP", "fp-ann")
BEN = Party("Org3MSP", "fp-ben")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, "NORMAL")
    await migrate(eng)
    yield eng
    await eng.dispose()


def _record(auction_id: str, state: str = "open") -> AuctionRecord:
    return AuctionRecord(
        terms=Terms(auction_id, f"item {auction_id}", 10, 1_000, False),
        seller=SELLER,
        open_event_id=f"open-{auction_id}",
        state=state,  # type: ignore[arg-type]
        updated_ms=1,
        open_seq=1,
    )


def _planned(n: int) -> PlannedEvent:
    return PlannedEvent(f"close-{n}", 1_000 + n, {"winner": n})


async def test_ids_and_channels_are_taken_once(engine: AsyncEngine) -> None:
    repo = AuctionRepository(engine)
    assert await repo.add(_record("a"))
    assert not await repo.add(_record("a"))
    (stored,) = await repo.load_all()
    assert stored == _record("a")


async def test_exactly_one_close_is_decided_under_concurrency(engine: AsyncEngine) -> None:
    repo = AuctionRepository(engine)
    await repo.add(_record("a"))
    winner = Winner(4, ANN, 150)
    won = await asyncio.gather(*(repo.begin_close("a", winner, _planned(n), 2) for n in range(8)))
    assert sorted(won) == [False] * 7 + [True]
    record = await repo.by_channel("auction-a")
    assert isinstance(record, AuctionRecord) and record.state == "closing"
    assert record.close_event == _planned(won.index(True)) and record.winner == winner
    await repo.finish_close("a", 9, 3)
    record = await repo.by_channel("auction-a")
    assert isinstance(record, AuctionRecord) and (record.state, record.close_seq) == ("closed", 9)
    assert not await repo.begin_close("a", None, _planned(99), 4)


async def test_the_settlement_listing_filters_and_pages(engine: AsyncEngine) -> None:
    repo = AuctionRepository(engine)
    for auction_id, buyer in (("a", ANN), ("b", BEN), ("c", ANN), ("d", None)):
        await repo.add(_record(auction_id))
        winner = Winner(2, buyer, 50) if buyer else None
        await repo.begin_close(auction_id, winner, _planned(0), 2)
    await repo.add(_record("e"))  # still open: not a settlement
    await repo.set_settlement("b", {"state": "Proposed", "tx_id": "t1", "history": []}, 5)

    async def ids(**query: object) -> list[str]:
        found = await repo.settlements(
            **{"state": None, "party": None, "after": None, "limit": 10, **query}
        )  # type: ignore[arg-type]
        return [r.terms.auction_id for r in found if isinstance(r, AuctionRecord)]

    assert await ids() == ["a", "b", "c"]
    assert await ids(state="Awaiting") == ["a", "c"]
    assert await ids(state="Proposed") == ["b"]
    assert await ids(party="fp-ann") == ["a", "c"]
    assert await ids(party="fp-seller") == ["a", "b", "c"]
    assert await ids(limit=2) == ["a", "b"]
    assert await ids(after="b") == ["c"]
    (b,) = await repo.settlements(state="Proposed", party=None, after=None, limit=5)
    assert isinstance(b, AuctionRecord) and b.settlement["tx_id"] == "t1"


async def test_an_unreadable_row_comes_back_as_broken(engine: AsyncEngine) -> None:
    repo = AuctionRepository(engine)
    await repo.add(_record("a"))
    await repo.add(_record("b"))
    async with engine.begin() as conn:
        await conn.execute(
            update(market_auctions)
            .where(market_auctions.c.auction_id == "a")
            .values(state="paused")
        )
    broken, fine = await repo.load_all()
    assert isinstance(broken, BrokenRecord) and broken.channel == "auction-a"
    assert "paused" in broken.reason
    assert isinstance(fine, AuctionRecord)


async def test_marking_open_re_inserts_a_row_removed_meanwhile(engine: AsyncEngine) -> None:
    repo = AuctionRepository(engine)
    record = _record("a", state="opening")
    await repo.add(record)
    await repo.remove("a")
    await repo.mark_open(record, 1, 7)
    (stored,) = await repo.load_all()
    assert isinstance(stored, AuctionRecord) and (stored.state, stored.open_seq) == ("open", 1)
