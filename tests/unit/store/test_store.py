"""The store on SQLite (WAL) and PostgreSQL: migrations, appends, reads, append-only rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.events.model import SignedEvent
from gateway.store.auth import AuthRepository, ChallengeRow
from gateway.store.engine import create_engine, downgrade, migrate, normalise_url
from gateway.store.events import EventRepository, NewEvent
from gateway.store.trust import EventStatusRepository

TABLES = {"identities", "challenges", "sessions", "events", "batches", "anchors", "event_statuses"}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    await migrate(eng)
    yield eng
    await eng.dispose()


def new(event_id: str, channel: str = "c1", payload: object = 1) -> NewEvent:
    canonical = (
        f'{{"channel":"{channel}","client_ts":1,"id":"{event_id}","payload":{payload},"type":"t"}}'
    ).encode()
    return NewEvent(
        SignedEvent(event_id, channel, "t", payload, 1, b"sig-" + event_id.encode(), canonical),
        signer="f" * 64,
        msp_id="Org1MSP",
        received_ms=1000,
    )


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names())) - {
            "alembic_version"
        }


async def test_migrations_up_down_up(engine: AsyncEngine) -> None:
    # Later revisions (the trust path's) may add tables: these must be there.
    tables = await _tables(engine)
    assert tables >= TABLES
    await migrate(engine)  # idempotent
    await downgrade(engine)
    assert await _tables(engine) == set()
    await migrate(engine)
    assert await _tables(engine) == tables


async def test_sequences_are_per_channel_and_survive_a_new_repository(engine: AsyncEngine) -> None:
    repo = EventRepository(engine)
    results = await repo.append([new("a"), new("b"), new("x", "c2"), new("c")])
    assert [(r.stored.channel, r.stored.seq) for r in results] == [
        ("c1", 1),
        ("c1", 2),
        ("c2", 1),
        ("c1", 3),
    ]
    again = EventRepository(engine)  # a restarted gateway continues the sequence
    assert (await again.append([new("d")]))[0].stored.seq == 4
    assert await again.last_seq("c1") == 4 and await again.last_seq("empty") == 0


async def test_duplicates_are_acknowledged_not_stored(engine: AsyncEngine) -> None:
    repo = EventRepository(engine)
    await repo.append([new("a"), new("b")])
    results = await repo.append([new("b"), new("c"), new("c"), new("a", payload=2)])
    assert [(r.stored.seq, r.duplicate, r.conflict) for r in results] == [
        (2, True, False),
        (3, False, False),
        (3, True, False),
        (1, True, True),
    ]
    assert await repo.count() == 3
    assert [e.id for e in await repo.after("c1", 0, 10)] == ["a", "b", "c"]


async def test_reads_in_order_with_limits(engine: AsyncEngine) -> None:
    repo = EventRepository(engine)
    await repo.append([new(f"e{i}") for i in range(25)])
    page = await repo.after("c1", 10, 5)
    assert [e.seq for e in page] == [11, 12, 13, 14, 15]
    one = await repo.get("c1", 7)
    assert one is not None and one.id == "e6" and one.payload == 1
    assert one.signature == b"sig-e6" and one.canonical.startswith(b'{"channel"')
    assert await repo.get("c1", 99) is None


async def test_events_are_append_only(engine: AsyncEngine) -> None:
    await EventRepository(engine).append([new("a")])
    for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    assert await EventRepository(engine).count() == 1


async def test_statuses_from_the_trust_path(engine: AsyncEngine) -> None:
    repo = EventRepository(engine)
    await repo.append([new(f"e{i}") for i in range(3)])
    statuses = EventStatusRepository(engine)
    await statuses.set_status("c1", [1, 2], "confirmed", now_ms=5, tx_id="tx1")
    await statuses.set_status("c1", [1], "finalized", now_ms=6, tx_id="tx1", block_number=9)
    found = await repo.statuses("c1", [1, 2, 3])
    assert found[1]["status"] == "finalized" and found[1]["block_number"] == 9
    assert found[2]["status"] == "confirmed" and 3 not in found


async def test_a_challenge_is_consumed_exactly_once_under_concurrency(engine: AsyncEngine) -> None:
    repo = AuthRepository(engine)
    await repo.add_challenge(ChallengeRow("n1", "fp", "d", 1, 2), "addr")
    outcomes = await asyncio.gather(*(repo.consume_challenge("n1", 5) for _ in range(5)))
    assert sorted(first for _, first in outcomes) == [False, False, False, False, True]
    assert await repo.consume_challenge("unknown", 5) == (None, False)
    assert await repo.purge_challenges(3) == 1


def test_url_normalisation() -> None:
    assert normalise_url("sqlite:///x.db").startswith("sqlite+aiosqlite:///")
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError):
        normalise_url("mysql://u@h/db")
