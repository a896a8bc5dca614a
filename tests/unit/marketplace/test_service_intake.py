"""The marketplace opens auctions through the door and the intake of every event: the
identity's emit budget, admission, the configured limits and the authorizer decide,
not rules of its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.authorizer import Action, Authorizer, ConfigPolicy
from gateway.auth.errors import AccessDenied
from gateway.auth.principal import Principal
from gateway.events.budget import EmitBudget
from gateway.events.errors import BadEventSignature, EmitRateLimited, EventTooLarge, Overloaded
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import NewEvent
from gateway.events.pipeline import EventPipeline
from gateway.events.signed import sign_event
from gateway.identity.signing import EcdsaSigner
from gateway.marketplace.service import MarketplaceService
from gateway.store.auctions import AuctionRepository
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository


class _Party:
    def __init__(self, name: str, role: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(key)
        self.principal = Principal(
            f"s-{name}", f"fp-{name}", "Org1MSP", role, 2**62, key.public_key()
        )

    def opening(self, auction_id: str, item: str = "lamp") -> dict[str, Any]:
        payload = {
            "auction_id": auction_id,
            "item": item,
            "reserve": 1,
            "closes_at": time.time_ns() // 1_000_000 + 60_000,
            "premium": False,
        }
        return sign_event(
            self.signer, channel=f"auction-{auction_id}", type="auction.open", payload=payload
        )


async def _service(
    tmp_path: Path,
    emit_roles: str,
    *,
    queue_limit: int = 1000,
    identity_budget: EmitBudget | None = None,
    writing: bool = True,
) -> AsyncIterator[MarketplaceService]:
    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}", "NORMAL")
    await migrate(engine)
    events = EventRepository(engine, "NORMAL")
    pipeline = EventPipeline(
        events,
        max_batch=64,
        queue_limit=queue_limit,
        metrics=GatewayMetrics(),
        identity_budget=identity_budget,
    )
    if writing:
        await pipeline.start()
    authorizer = Authorizer([ConfigPolicy("*=member,admin,auditor", emit_roles)], 30.0)
    service = MarketplaceService(
        authorizer=authorizer,
        pipeline=pipeline,
        events=events,
        identities=AuthRepository(engine),
        store=AuctionRepository(engine),
        limits=IntakeLimits(max_event_bytes=400),
        ledger=None,
        evidence=None,
        emit_roles=frozenset(emit_roles.split(",")),
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        await pipeline.stop()
        await events.close()
        await engine.dispose()


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[MarketplaceService]:
    async for service in _service(tmp_path, "member,admin"):
        yield service


async def test_a_role_the_authorizer_does_not_let_emit_may_not_sell(
    market: MarketplaceService,
) -> None:
    auditor, seller = _Party("audrey", "auditor"), _Party("sam", "member")
    with pytest.raises(AccessDenied) as info:
        await market.open_auction(auditor.principal, auditor.opening("a1"))
    assert info.value.code == "AL1511"
    with pytest.raises(BadEventSignature):
        await market.open_auction(seller.principal, auditor.opening("a1"))
    opened = await market.open_auction(seller.principal, seller.opening("a1"))
    assert opened["auction_id"] == "a1" and "a1" in market.auctions


async def test_the_configured_emit_roles_decide_who_sells(tmp_path: Path) -> None:
    auditor = _Party("audrey", "auditor")
    async for market in _service(tmp_path, "member,admin,auditor"):
        opened = await market.open_auction(auditor.principal, auditor.opening("a2"))
        assert opened["auction_id"] == "a2"


async def test_the_configured_size_limit_holds_for_an_opening(market: MarketplaceService) -> None:
    seller = _Party("sam", "member")
    with pytest.raises(EventTooLarge):
        await market.open_auction(seller.principal, seller.opening("a3", item="x" * 200))


async def test_a_closed_auction_refuses_emits_through_the_authorizer(
    market: MarketplaceService,
) -> None:
    seller = _Party("sam", "member")
    authorizer = market._authorizer
    await market.open_auction(seller.principal, seller.opening("a4"))
    assert await authorizer.allowed(seller.principal, "auction-a4", Action.WRITE)
    await market.close_auction("a4")
    assert not await authorizer.allowed(seller.principal, "auction-a4", Action.WRITE)


async def test_an_opening_spends_the_sellers_emit_budget_before_the_intake(
    tmp_path: Path,
) -> None:
    seller, other = _Party("sam", "member"), _Party("olga", "member")
    budget = EmitBudget(0.01, 2, "identity")
    async for market in _service(tmp_path, "member,admin", identity_budget=budget):
        await market.open_auction(seller.principal, seller.opening("b1"))
        with pytest.raises(BadEventSignature):  # a refused opening spends it too
            await market.open_auction(seller.principal, other.opening("b2"))
        with pytest.raises(EmitRateLimited) as refused:
            await market.open_auction(seller.principal, other.opening("b3"))
        assert refused.value.code == "AL1610" and refused.value.details["retry_after"] > 0
        with pytest.raises(EmitRateLimited):
            await market.open_auction(seller.principal, seller.opening("b4"))
        await market.open_auction(other.principal, other.opening("b5"))  # its own budget
        assert set(market.auctions) == {"b1", "b5"}


async def test_an_opening_passes_admission_like_an_emit(tmp_path: Path) -> None:
    seller = _Party("sam", "member")
    async for market in _service(tmp_path, "member,admin", queue_limit=1, writing=False):
        # The writer is not running: one queued event fills the commit queue.
        market._pipeline.submit(_item_of(seller, "board"), lambda _result: None)
        with pytest.raises(Overloaded) as refused:
            await market.open_auction(seller.principal, seller.opening("c1"))
        assert refused.value.code == "AL1607" and refused.value.details["retry_after"] >= 100
        assert not market.auctions


def _item_of(party: _Party, channel: str) -> NewEvent:
    wire = sign_event(party.signer, channel=channel, type="note", payload={})
    return intake(party.principal, wire, IntakeLimits(), GATEWAY_AUTHORITY, 1)
