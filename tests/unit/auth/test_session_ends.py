"""Session ends shared through the store: two session services on one real SQLite file
stand for two gateway processes; the follower of one applies the logouts of the other."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from gateway.auth import errors as auth_errors
from gateway.auth.revocation import SessionEndFollower
from gateway.auth.sessions import SessionService, SessionTokens
from gateway.identity.ca import EmbeddedCA
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.models import session_ends
from tests.unit.auth.test_login import Clock, Env, build, member


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedCA:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    ca.enroll("Org1", "alice", "member")
    ca.enroll("Org2", "bob", "member")
    return ca


class Pair:
    """Process A and process B: one store, one token key, a session service each."""

    def __init__(self, repo: AuthRepository, a: Env, b: SessionService) -> None:
        self.repo = repo
        self.a = a
        self.b = b
        self.ended: list[tuple[str, bool]] = []
        b.on_revocation(lambda sid, here: self.ended.append((sid, here)))


@pytest.fixture
async def pair(tmp_path: Path, ca: EmbeddedCA) -> AsyncIterator[Pair]:
    engine = create_engine(f"sqlite:///{tmp_path / 'auth.db'}", "NORMAL")
    await migrate(engine)
    repo = AuthRepository(engine)
    clock = Clock()
    clock.now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    yield Pair(repo, Env(build(repo, ca, clock), clock, repo), build(repo, ca, clock))
    await engine.dispose()


async def _login(pair: Pair, ca: EmbeddedCA, name: str = "alice") -> SessionTokens:
    org = "Org1" if name == "alice" else "Org2"
    tokens = await pair.a.login(member(ca, org, name))
    assert isinstance(tokens, SessionTokens)
    return tokens


async def test_a_logout_on_one_process_ends_the_session_seen_alive_on_the_other(
    pair: Pair, ca: EmbeddedCA
) -> None:
    alice = await _login(pair, ca)
    bob = await _login(pair, ca, "bob")
    follower = SessionEndFollower(pair.repo, pair.b)
    await follower.start()
    # B has seen both sessions alive: without the follower it would not ask again.
    assert (await pair.b.authenticate(alice.token)).session_id == alice.session_id
    await pair.b.authenticate(bob.token)
    assert await follower.poll() == []

    await pair.a.service.revoke(alice.session_id)
    assert await follower.poll() == [alice.session_id]
    assert pair.ended == [(alice.session_id, False)]
    with pytest.raises(auth_errors.SessionRevoked):
        await pair.b.authenticate(alice.token)
    with pytest.raises(auth_errors.SessionRevoked):
        await pair.b.refresh(alice.refresh_token, "10.0.0.2")
    assert (await pair.b.authenticate(bob.token)).session_id == bob.session_id
    # Read again (or already known from the fan-out's kick): nothing more happens.
    assert await follower.poll() == []
    assert pair.ended == [(alice.session_id, False)]


async def test_an_end_the_fan_out_delivered_first_is_not_applied_twice(
    pair: Pair, ca: EmbeddedCA
) -> None:
    alice = await _login(pair, ca)
    follower = SessionEndFollower(pair.repo, pair.b)
    await follower.start()
    await pair.a.service.revoke(alice.session_id)
    assert pair.b.end_elsewhere(alice.session_id, notify=False)
    with pytest.raises(auth_errors.SessionRevoked):
        await pair.b.authenticate(alice.token)
    assert await follower.poll() == []
    assert pair.ended == []


async def test_the_follower_starts_after_the_ends_written_before_it(
    pair: Pair, ca: EmbeddedCA
) -> None:
    alice = await _login(pair, ca)
    await pair.a.service.revoke(alice.session_id)
    follower = SessionEndFollower(pair.repo, pair.b)
    await follower.start()
    assert await follower.poll() == []
    # The store still says so when B first sees the session.
    with pytest.raises(auth_errors.SessionRevoked):
        await pair.b.authenticate(alice.token)


async def test_an_id_committed_after_a_higher_one_is_not_missed(pair: Pair, ca: EmbeddedCA) -> None:
    alice = await _login(pair, ca)
    bob = await _login(pair, ca, "bob")
    follower = SessionEndFollower(pair.repo, pair.b, gap_wait_s=5.0)
    await follower.start()
    engine = pair.repo._engine
    # Two ends whose ids were taken 1 and 2, the second committed first.
    async with engine.begin() as conn:
        await conn.execute(
            insert(session_ends).values(
                id=2, session_id=bob.session_id, fingerprint=bob.fingerprint, ended_ms=1
            )
        )
    assert await follower.poll() == [bob.session_id]
    async with engine.begin() as conn:
        await conn.execute(
            insert(session_ends).values(
                id=1, session_id=alice.session_id, fingerprint=alice.fingerprint, ended_ms=1
            )
        )
    assert await follower.poll() == [alice.session_id]


async def test_a_skipped_id_is_given_up_after_the_wait(pair: Pair, ca: EmbeddedCA) -> None:
    bob = await _login(pair, ca, "bob")
    now = [100.0]
    follower = SessionEndFollower(pair.repo, pair.b, gap_wait_s=5.0, clock=lambda: now[0])
    await follower.start()
    async with pair.repo._engine.begin() as conn:
        await conn.execute(
            insert(session_ends).values(
                id=3, session_id=bob.session_id, fingerprint=bob.fingerprint, ended_ms=1
            )
        )
    await follower.poll()
    assert sorted(follower._gaps) == [1, 2]
    now[0] += 6.0
    await follower.poll()
    assert follower._gaps == {}


async def test_old_ends_are_purged(pair: Pair, ca: EmbeddedCA) -> None:
    alice = await _login(pair, ca)
    await pair.a.service.revoke(alice.session_id)
    assert await pair.repo.last_session_end() == 1
    assert await pair.repo.purge_session_ends(0) == 0
    assert await pair.repo.purge_session_ends(pair.a.clock.now + 1) == 1
    # The session itself stays ended in the store.
    with pytest.raises(auth_errors.SessionRevoked):
        await pair.b.authenticate(alice.token)
