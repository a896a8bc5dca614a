"""The marketplace opens auctions through the event intake: the configured limits
and the authorizer decide, not rules of its own."""

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
from gateway.events.errors import BadEventSignature, EventTooLarge
from gateway.events.intake import IntakeLimits
from gateway.events.metrics import GatewayMetrics
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


async def _service(tmp_path: Path, emit_roles: str) -> AsyncIterator[MarketplaceService]:
    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}", "NORMAL")
    await migrate(engine)
    events = EventRepository(engine, "NORMAL")
    pipeline = EventPipeline(events, max_batch=64, queue_limit=1000, metrics=GatewayMetrics())
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
