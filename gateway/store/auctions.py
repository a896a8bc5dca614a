"""Auction repository: the marketplace's auctions across restarts (``market_auctions``).

Implements :class:`gateway.marketplace.records.AuctionStore` on SQLite and
PostgreSQL. Every database failure is raised as
:class:`~gateway.events.errors.StoreUnavailable`; a row that cannot be read
back (bad JSON, an unknown state) comes back as a
:class:`~gateway.marketplace.records.BrokenRecord` so one bad row does not
hide the others.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.events.errors import StoreUnavailable
from gateway.marketplace.auctions import Party, Terms
from gateway.marketplace.records import (
    SETTLEMENT_AWAITING,
    AuctionRecord,
    BrokenRecord,
    PlannedEvent,
    RecordState,
    Winner,
)
from gateway.store.models import market_auctions as t

_STATES: tuple[RecordState, ...] = ("opening", "open", "closing", "closed")


def _record(row: Any) -> AuctionRecord | BrokenRecord:
    try:
        state = row.state
        if state not in _STATES:
            raise ValueError(f"unknown state {state!r}")
        winner = None
        if row.winner_seq is not None:
            winner = Winner(
                row.winner_seq, Party(row.buyer_msp, row.buyer_fingerprint), int(row.amount)
            )
        close_event = (
            PlannedEvent.from_json(json.loads(row.close_event)) if row.close_event else None
        )
        settlement = json.loads(row.settlement) if row.settlement else {}
        if not isinstance(settlement, dict):
            raise ValueError("settlement is not an object")
        return AuctionRecord(
            terms=Terms(
                row.auction_id, row.item, int(row.reserve), int(row.closes_at_ms), bool(row.premium)
            ),
            seller=Party(row.seller_msp, row.seller_fingerprint),
            open_event_id=row.open_event_id,
            state=state,
            updated_ms=int(row.updated_ms),
            open_seq=row.open_seq,
            winner=winner,
            close_event=close_event,
            close_seq=row.close_seq,
            settlement=settlement,
        )
    except (ValueError, TypeError) as exc:
        return BrokenRecord(row.auction_id, row.channel, f"{type(exc).__name__}: {exc}")


class AuctionRepository:
    """Reads and writes ``market_auctions``; see the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(
                f"the auctions table is unreachable ({type(exc).__name__}): retry shortly"
            ) from exc

    async def add(self, record: AuctionRecord) -> bool:
        terms = record.terms
        try:
            async with self._begin() as conn:
                await conn.execute(
                    insert(t).values(
                        auction_id=terms.auction_id,
                        channel=terms.channel,
                        item=terms.item,
                        reserve=terms.reserve,
                        closes_at_ms=terms.closes_at_ms,
                        premium=int(terms.premium),
                        seller_msp=record.seller.msp_id,
                        seller_fingerprint=record.seller.fingerprint,
                        open_event_id=record.open_event_id,
                        open_seq=record.open_seq,
                        state=record.state,
                        updated_ms=record.updated_ms,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def mark_open(self, record: AuctionRecord, open_seq: int, now_ms: int) -> None:
        async with self._begin() as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.auction_id == record.terms.auction_id)
                .values(state="open", open_seq=open_seq, updated_ms=now_ms)
            )
            if result.rowcount == 1:
                return
        # Another process took the row for an abandoned open while this one stored the
        # event: the event is stored, so the auction exists.
        reopened = AuctionRecord(
            terms=record.terms,
            seller=record.seller,
            open_event_id=record.open_event_id,
            state="open",
            updated_ms=now_ms,
            open_seq=open_seq,
        )
        await self.add(reopened)

    async def remove(self, auction_id: str) -> None:
        async with self._begin() as conn:
            await conn.execute(delete(t).where(t.c.auction_id == auction_id))

    async def load_all(self) -> list[AuctionRecord | BrokenRecord]:
        async with self._begin() as conn:
            rows = (await conn.execute(select(t).order_by(t.c.auction_id))).all()
        return [_record(row) for row in rows]

    async def by_channel(self, channel: str) -> AuctionRecord | BrokenRecord | None:
        async with self._begin() as conn:
            row = (await conn.execute(select(t).where(t.c.channel == channel))).first()
        return _record(row) if row is not None else None

    async def begin_close(
        self, auction_id: str, winner: Winner | None, event: PlannedEvent, now_ms: int
    ) -> bool:
        async with self._begin() as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.auction_id == auction_id, t.c.state == "open")
                .values(
                    state="closing",
                    winner_seq=winner.seq if winner else None,
                    buyer_msp=winner.buyer.msp_id if winner else None,
                    buyer_fingerprint=winner.buyer.fingerprint if winner else None,
                    amount=winner.amount if winner else None,
                    settlement_state=SETTLEMENT_AWAITING if winner else None,
                    close_event=json.dumps(event.to_json(), sort_keys=True),
                    updated_ms=now_ms,
                )
            )
            return bool(result.rowcount == 1)

    async def finish_close(self, auction_id: str, close_seq: int, now_ms: int) -> None:
        async with self._begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.auction_id == auction_id, t.c.state.in_(("closing", "closed")))
                .values(state="closed", close_seq=close_seq, updated_ms=now_ms)
            )

    async def set_settlement(
        self, auction_id: str, settlement: dict[str, Any], now_ms: int
    ) -> None:
        state = settlement.get("state")
        async with self._begin() as conn:
            await conn.execute(
                update(t)
                .where(t.c.auction_id == auction_id)
                .values(
                    settlement=json.dumps(settlement, sort_keys=True),
                    settlement_state=state if isinstance(state, str) else SETTLEMENT_AWAITING,
                    updated_ms=now_ms,
                )
            )

    async def settlements(
        self, *, state: str | None, party: str | None, after: str | None, limit: int
    ) -> list[AuctionRecord | BrokenRecord]:
        query = select(t).where(t.c.winner_seq.is_not(None))
        if state is not None:
            query = query.where(t.c.settlement_state == state)
        if party is not None:
            query = query.where(
                or_(t.c.seller_fingerprint == party, t.c.buyer_fingerprint == party)
            )
        if after is not None:
            query = query.where(t.c.auction_id > after)
        query = query.order_by(t.c.auction_id).limit(limit)
        async with self._begin() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]


__all__ = ["AuctionRepository"]
