"""Several writers on one PostgreSQL (each with its own engine, as separate processes
have), the shared token key, the anchor lease and SQLite's one-process rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.anchoring.errors import LeaseLost
from gateway.anchoring.lease import Lease
from gateway.errors import ConfigError
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository
from gateway.store.shared import SqliteOwner, shared_secret
from tests.integration.gateway.support import PgCluster
from tests.unit.store.test_store import new

pytestmark = pytest.mark.postgres


_REPOS: list[EventRepository] = []


def _repo(engine: AsyncEngine) -> EventRepository:
    """A repository closed at the end of the test."""
    repo = EventRepository(engine)
    _REPOS.append(repo)
    return repo


@pytest.fixture
async def engines(postgres_cluster: PgCluster) -> AsyncIterator[list[AsyncEngine]]:
    url = postgres_cluster.new_database()
    found = [create_engine(url) for _ in range(3)]
    await migrate(found[0])
    yield found
    while _REPOS:
        await _REPOS.pop().close()
    for engine in found:
        await engine.dispose()


async def test_writers_on_one_hot_channel_get_gap_free_ordered_sequences(
    engines: list[AsyncEngine],
) -> None:
    repos = [_repo(e) for e in engines]
    per_writer, batch = 60, 5

    async def write(k: int, repo: EventRepository) -> list[int]:
        seqs: list[int] = []
        for b in range(per_writer // batch):
            results = await repo.append([new(f"w{k}-{b}-{i}", "hot") for i in range(batch)])
            seqs.extend(r.stored.seq for r in results)
        return seqs

    got = await asyncio.gather(*(write(k, r) for k, r in enumerate(repos)))
    everything = sorted(s for seqs in got for s in seqs)
    assert everything == list(range(1, len(repos) * per_writer + 1))
    # Each commit's numbers are contiguous and a writer's commits increase.
    for seqs in got:
        assert seqs == sorted(seqs)
    stored = await repos[0].after("hot", 0, 10_000)
    assert [e.seq for e in stored] == everything


async def test_an_id_stored_by_another_writer_is_a_duplicate_and_takes_no_seq(
    engines: list[AsyncEngine],
) -> None:
    a, b = _repo(engines[0]), _repo(engines[1])
    (first,) = await a.append([new("same", "c")])
    results = await b.append([new("same", "c"), new("other", "c")])
    assert results[0].duplicate and results[0].stored.seq == first.stored.seq
    assert not results[1].duplicate and results[1].stored.seq == first.stored.seq + 1
    (third,) = await a.append([new("third", "c")])
    assert third.stored.seq == 3


async def test_concurrent_writers_of_the_same_ids_store_each_once(
    engines: list[AsyncEngine],
) -> None:
    repos = [_repo(e) for e in engines]
    ids = [f"e{i}" for i in range(40)]
    got = await asyncio.gather(*(r.append([new(i, "d") for i in ids]) for r in repos))
    fresh = [res for results in got for res in results if not res.duplicate]
    assert sorted(r.stored.seq for r in fresh) == list(range(1, 41))
    assert await repos[0].count() == 40


async def test_the_token_key_is_created_once_and_shared(engines: list[AsyncEngine]) -> None:
    keys = await asyncio.gather(*(shared_secret(e, "token_secret") for e in engines))
    assert len(keys[0]) == 32 and keys.count(keys[0]) == 3


async def test_one_lease_holder_at_a_time_and_a_stale_holder_is_fenced(
    engines: list[AsyncEngine],
) -> None:
    first = Lease(engines[0], ttl_ms=300)
    second = Lease(engines[1], ttl_ms=300)
    grant = await first.try_acquire()
    assert grant is not None and grant.epoch == 1
    assert await second.try_acquire() is None
    assert await first.renew()
    async with engines[0].begin() as conn:
        await first.fence(conn)  # still ours
    await asyncio.sleep(0.4)  # first stalls past its expiry
    taken = await second.try_acquire()
    assert taken is not None and taken.epoch == 2
    with pytest.raises(LeaseLost):
        async with engines[0].begin() as conn:
            await first.fence(conn)
    assert not await first.renew()
    state = await second.state()
    assert state is not None and state.holder == second.holder and state.epoch == 2
    await second.release()
    again = await first.try_acquire()
    assert again is not None and again.epoch == 3


async def test_a_takeover_waits_for_the_holders_write_in_flight(
    engines: list[AsyncEngine],
) -> None:
    first = Lease(engines[0], ttl_ms=200)
    second = Lease(engines[1], ttl_ms=200)
    assert await first.try_acquire() is not None
    async with engines[0].begin() as conn:
        await first.fence(conn)
        await asyncio.sleep(0.3)  # expired meanwhile, but the row is share-locked
        takeover = asyncio.create_task(second.try_acquire())
        await asyncio.sleep(0.2)
        assert not takeover.done()
        await conn.execute(text("SELECT 1"))
    assert (await takeover) is not None


def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    owner = SqliteOwner(tmp_path / "events.db")
    owner.acquire()
    try:
        with pytest.raises(ConfigError, match=r"gateway\.database_url: .* served by gateway pid"):
            SqliteOwner(tmp_path / "events.db").acquire()
    finally:
        owner.release()
    again = SqliteOwner(tmp_path / "events.db")
    again.acquire()
    again.release()


async def test_the_one_statement_commit_numbers_in_batch_order_and_refuses_a_stored_id(
    engines: list[AsyncEngine],
) -> None:
    from sqlalchemy.exc import IntegrityError

    repo = _repo(engines[0])
    batch = [new(f"o{i}", "a" if i % 2 else "b") for i in range(6)]
    results = await repo._append_one_statement(batch)
    assert [r.stored.seq for r in results] == [1, 1, 2, 2, 3, 3]
    assert [e.id for e in await repo.after("a", 0, 10)] == ["o1", "o3", "o5"]
    with pytest.raises(IntegrityError):
        await repo._append_one_statement([new("n1", "a"), new("o3", "a")])
    (next_one,) = await repo.append([new("n2", "a")])
    assert next_one.stored.seq == 4  # the refused statement took no number


async def test_connections_the_server_closed_are_replaced_without_a_failed_statement(
    engines: list[AsyncEngine],
) -> None:
    # The pool does not ping on checkout (three round trips on asyncpg): a connection
    # PostgreSQL ended must still never reach a statement, reads and commits alike.
    engine, admin = engines[0], engines[1]
    repo = _repo(engine)
    async with engine.connect() as a, engine.connect() as b:  # two pooled connections
        pids = [(await conn.execute(text("SELECT pg_backend_pid()"))).scalar() for conn in (a, b)]
    await repo.append([new("before")])
    async with admin.connect() as conn:
        for pid in pids:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.2)  # the server's FATAL and EOF reach the idle sockets
    assert (await repo.append([new("after")]))[0].stored.seq == 2
    assert await repo.last_seq("c1") == 2
    assert len({r.stored.seq for r in await repo.append([new("x"), new("y")])}) == 2
