"""Auctions across restarts of the marketplace service (real SQLite store, no ledger):
rebuilt from the database, closed once at their deadline, and auction channels refuse
events while their auction is not known."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from gateway.auth.authorizer import Action, Authorizer, ConfigPolicy
from gateway.auth.principal import Principal
from gateway.clock import now_ms
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import AppendResult, NewEvent
from gateway.events.pipeline import EventPipeline
from gateway.events.signed import sign_event
from gateway.identity.signing import EcdsaSigner
from gateway.marketplace.auctions import Party, Terms
from gateway.marketplace.errors import AuctionNotFound, InvalidAuction, MarketStateUnknown
from gateway.marketplace.records import AuctionRecord
from gateway.marketplace.service import MarketplaceService
from gateway.store.auctions import AuctionRepository
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository
from gateway.store.models import market_auctions

LIMITS = IntakeLimits(max_event_bytes=4096)


class _Party:
    def __init__(self, name: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(key)
        self.principal = Principal(
            f"s-{name}", f"fp-{name}", "Org1MSP", "member", 2**62, key.public_key()
        )

    def opening(self, auction_id: str, closes_at: int) -> dict[str, Any]:
        payload = {
            "auction_id": auction_id,
            "item": "lamp",
            "reserve": 10,
            "closes_at": closes_at,
            "premium": False,
        }
        return sign_event(
            self.signer, channel=f"auction-{auction_id}", type="auction.open", payload=payload
        )

    def event(self, channel: str, payload: dict[str, Any], type: str = "bid") -> NewEvent:
        wire = sign_event(self.signer, channel=channel, type=type, payload=payload)
        return intake(self.principal, wire, LIMITS, GATEWAY_AUTHORITY, now_ms())


class Gateway:
    """One run of the marketplace over the database file ``db`` (a gateway process)."""

    def __init__(self, db: Path, *, migrated: bool = True) -> None:
        self.engine = create_engine(f"sqlite:///{db}", "NORMAL")
        self.migrated = migrated
        self.events = EventRepository(self.engine, "NORMAL")
        self.pipeline = EventPipeline(
            self.events, max_batch=64, queue_limit=1000, metrics=GatewayMetrics()
        )
        self.authorizer = Authorizer([ConfigPolicy("*=member", "member")], 30.0)
        self.store = AuctionRepository(self.engine)
        self.market = MarketplaceService(
            authorizer=self.authorizer,
            pipeline=self.pipeline,
            events=self.events,
            identities=AuthRepository(self.engine),
            store=self.store,
            limits=LIMITS,
            ledger=None,
            evidence=None,
            emit_roles=frozenset({"member"}),
        )

    async def start(self) -> Gateway:
        if self.migrated:
            await migrate(self.engine)
        await self.pipeline.start()
        await self.market.start()
        return self

    async def stop(self) -> None:
        await self.market.stop()
        await self.pipeline.stop()
        await self.events.close()
        await self.engine.dispose()

    async def submit(self, item: NewEvent) -> AppendResult:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self.pipeline.submit(item, done.set_result)
        result = await done
        assert isinstance(result, AppendResult), result
        return result


@contextlib.asynccontextmanager
async def running(db: Path, *, migrated: bool = True) -> AsyncIterator[Gateway]:
    gateway = await Gateway(db, migrated=migrated).start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def _closed(gateway: Gateway, auction_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while auction_id not in gateway.market._close_seqs:
        assert time.monotonic() < deadline, f"auction {auction_id} did not close"
        await asyncio.sleep(0.02)


async def test_an_auction_survives_a_restart_and_closes_once_at_its_deadline(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    seller, ann, ben = _Party("seller"), _Party("ann"), _Party("ben")
    closes_at = now_ms() + 1500
    async with running(db) as first:
        await first.market.open_auction(seller.principal, seller.opening("a1", closes_at))
        await first.submit(ann.event("auction-a1", {"amount": 100}))
        await first.submit(ben.event("auction-a1", {"amount": 5}))  # below the reserve
        assert first.market.get("a1").best().amount == 100  # type: ignore[union-attr]
    async with running(db) as second:
        auction = second.market.get("a1")
        # The board is rebuilt from the stored bids, verdicts included.
        assert [(b.amount, b.valid) for b in auction.bids] == [(100, True), (5, False)]
        assert not auction.closed
        await second.submit(ben.event("auction-a1", {"amount": 150}))
        await _closed(second, "a1")
        assert auction.winner is not None and auction.winner.amount == 150
        assert auction.closed_at_ms == closes_at
        assert not await second.authorizer.allowed(ben.principal, "auction-a1", Action.WRITE)
        (record,) = await second.store.load_all()
        assert isinstance(record, AuctionRecord) and record.state == "closed"
        assert record.winner is not None and record.winner.amount == 150
        decided = record.close_event
    async with running(db) as third:
        auction = third.market.get("a1")
        assert auction.closed and auction.winner is not None and auction.winner.amount == 150
        # Nothing was decided again: the recorded close event is the one of the first close.
        (record,) = await third.store.load_all()
        assert isinstance(record, AuctionRecord) and record.close_event == decided
        assert not await third.authorizer.allowed(ben.principal, "auction-a1", Action.WRITE)


async def test_an_auction_whose_deadline_passed_while_down_closes_at_start(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    seller, ann = _Party("seller"), _Party("ann")
    closes_at = now_ms() + 600
    async with running(db) as first:
        await first.market.open_auction(seller.principal, seller.opening("a2", closes_at))
        await first.submit(ann.event("auction-a2", {"amount": 40}))
    await asyncio.sleep(max(0.0, (closes_at - now_ms()) / 1000) + 0.3)
    async with running(db) as second:
        await _closed(second, "a2", timeout=5.0)
        auction = second.market.get("a2")
        assert auction.winner is not None and auction.winner.amount == 40
        # Decided as if the gateway had stayed up: closed at the deadline, not at start.
        assert auction.closed_at_ms == closes_at
        planned = second.market._close_events["a2"]
        assert planned.payload["closed_at"] == closes_at
        assert planned.payload["bids"] == 1 and planned.payload["valid_bids"] == 1


async def test_auction_channels_refuse_events_until_the_auctions_are_loaded(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    ann = _Party("ann")
    # No tables yet: the load fails, the gateway runs, auction channels refuse.
    gateway = await Gateway(db, migrated=False).start()
    try:
        assert not gateway.market.loaded
        with pytest.raises(MarketStateUnknown) as info:
            gateway.pipeline.submit(ann.event("auction-x", {"amount": 1}), lambda _r: None)
        assert info.value.code == "AL1912"
        gateway.market.admit(ann.event("board-1", {"text": "hi"}))  # other channels pass
        await migrate(gateway.engine)
        deadline = time.monotonic() + 10
        while not gateway.market.loaded:
            assert time.monotonic() < deadline, "the marketplace did not reload"
            await asyncio.sleep(0.05)
        # Loaded now: the state is known, and there is no auction on that channel.
        with pytest.raises(AuctionNotFound) as not_found:
            gateway.pipeline.submit(ann.event("auction-x", {"amount": 1}), lambda _r: None)
        assert not_found.value.code == "AL1901"
    finally:
        await gateway.stop()


async def test_an_unreadable_record_refuses_its_channel_only(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    seller, ann = _Party("seller"), _Party("ann")
    closes_at = now_ms() + 60_000
    async with running(db) as first:
        await first.market.open_auction(seller.principal, seller.opening("good", closes_at))
        await first.market.open_auction(seller.principal, seller.opening("bad", closes_at))
        async with first.engine.begin() as conn:
            await conn.execute(
                update(market_auctions)
                .where(market_auctions.c.auction_id == "bad")
                .values(close_event="{not json")
            )
    async with running(db) as second:
        with pytest.raises(MarketStateUnknown) as info:
            second.pipeline.submit(ann.event("auction-bad", {"amount": 20}), lambda _r: None)
        assert "unreadable" in info.value.message
        # A new auction may not take the unreadable one's id either.
        with pytest.raises(InvalidAuction, match="already exists"):
            await second.market.open_auction(seller.principal, seller.opening("bad", closes_at))
        stored = await second.submit(ann.event("auction-good", {"amount": 20}))
        assert not stored.duplicate and second.market.get("good").best() is not None


async def test_an_open_that_never_stored_its_event_is_forgotten_at_start(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    seller, ann = _Party("seller"), _Party("ann")
    terms = Terms("ghost", "lamp", 10, now_ms() + 60_000, False)
    async with running(db) as first:
        # What a gateway that died between writing the record and storing the event leaves.
        added = await first.store.add(
            AuctionRecord(
                terms=terms,
                seller=Party("Org1MSP", "fp-seller"),
                open_event_id="never-stored",
                state="opening",
                updated_ms=now_ms(),
            )
        )
        assert added
    async with running(db) as second:
        assert await second.store.load_all() == []
        with pytest.raises(AuctionNotFound):
            second.pipeline.submit(ann.event("auction-ghost", {"amount": 20}), lambda _r: None)
        # The seller, never acknowledged, may open it again.
        opened = await second.market.open_auction(
            seller.principal, seller.opening("ghost", terms.closes_at_ms)
        )
        assert opened["state"] == "open"
