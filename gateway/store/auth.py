"""Auth repository: identities seen, login challenges and sessions."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from sqlalchemy import BigInteger, delete, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.models import challenges, identities, session_ends, sessions


@dataclasses.dataclass(frozen=True, slots=True)
class ChallengeRow:
    nonce: str
    fingerprint: str
    domain: str
    issued_ms: int
    expires_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    fingerprint: str
    msp_id: str
    role: str
    expires_ms: int
    refresh_hash: str
    refresh_expires_ms: int
    revoked_ms: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionEndRow:
    """A session ended (``session_ends``): ``id`` grows with every end written."""

    id: int
    session_id: str
    fingerprint: str
    ended_ms: int


class AuthRepository:
    """Reads and writes ``identities``, ``challenges`` and ``sessions``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_challenge(self, row: ChallengeRow, address: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(challenges).values(
                    nonce=row.nonce,
                    fingerprint=row.fingerprint,
                    domain=row.domain,
                    address=address,
                    issued_ms=row.issued_ms,
                    expires_ms=row.expires_ms,
                )
            )

    async def consume_challenge(self, nonce: str, now_ms: int) -> tuple[ChallengeRow | None, bool]:
        """Mark the challenge used; returns ``(row, first_use)``.

        ``row`` is ``None`` for an unknown nonce. ``first_use`` is false when
        the challenge had been used before: the update is conditional, so two
        concurrent answers cannot both win.
        """
        async with self._engine.begin() as conn:
            found = (
                await conn.execute(select(challenges).where(challenges.c.nonce == nonce))
            ).first()
            if found is None:
                return None, False
            result = await conn.execute(
                update(challenges)
                .where(challenges.c.nonce == nonce, challenges.c.used_ms.is_(None))
                .values(used_ms=now_ms)
            )
            row = ChallengeRow(
                found.nonce, found.fingerprint, found.domain, found.issued_ms, found.expires_ms
            )
            return row, result.rowcount == 1

    async def purge_challenges(self, before_ms: int) -> int:
        """Delete challenges that expired before ``before_ms``; returns how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(challenges).where(challenges.c.expires_ms < before_ms)
            )
            return int(result.rowcount or 0)

    async def record_identity(
        self,
        *,
        fingerprint: str,
        msp_id: str,
        role: str,
        subject: str,
        certificate_pem: str,
        not_after_ms: int,
        now_ms: int,
    ) -> None:
        """Insert the identity or refresh its last-seen time."""
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(identities)
                .where(identities.c.fingerprint == fingerprint)
                .values(last_seen_ms=now_ms, role=role, msp_id=msp_id)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(identities).values(
                        fingerprint=fingerprint,
                        msp_id=msp_id,
                        role=role,
                        subject=subject,
                        certificate=certificate_pem,
                        not_after_ms=not_after_ms,
                        first_seen_ms=now_ms,
                        last_seen_ms=now_ms,
                    )
                )

    async def certificate_of(self, fingerprint: str) -> str | None:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(identities.c.certificate).where(identities.c.fingerprint == fingerprint)
                )
            ).scalar()
            return str(value) if value is not None else None

    async def create_session(self, row: SessionRow, address: str, created_ms: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(
                    id=row.id,
                    fingerprint=row.fingerprint,
                    msp_id=row.msp_id,
                    role=row.role,
                    address=address,
                    created_ms=created_ms,
                    expires_ms=row.expires_ms,
                    refresh_hash=row.refresh_hash,
                    refresh_expires_ms=row.refresh_expires_ms,
                    revoked_ms=None,
                )
            )

    async def get_session(self, session_id: str) -> SessionRow | None:
        async with self._engine.connect() as conn:
            r = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
            if r is None:
                return None
            return SessionRow(
                r.id,
                r.fingerprint,
                r.msp_id,
                r.role,
                r.expires_ms,
                r.refresh_hash,
                r.refresh_expires_ms,
                r.revoked_ms,
            )

    async def rotate_refresh(
        self, session_id: str, old_hash: str, new_hash: str, expires_ms: int
    ) -> bool:
        """Swap the refresh token hash if it still is ``old_hash`` (single use)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.refresh_hash == old_hash,
                    sessions.c.revoked_ms.is_(None),
                )
                .values(refresh_hash=new_hash, expires_ms=expires_ms)
            )
            return result.rowcount == 1

    async def revoke_session(self, session_id: str, now_ms: int) -> bool:
        """End the session (``revoked_ms``) and, in the same transaction, append it to
        ``session_ends`` for the other processes; False when it had ended already."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                insert(session_ends).from_select(
                    ["session_id", "fingerprint", "ended_ms"],
                    select(
                        sessions.c.id, sessions.c.fingerprint, literal(now_ms, BigInteger)
                    ).where(sessions.c.id == session_id),
                )
            )
            return True

    async def last_session_end(self) -> int:
        """The highest ``session_ends`` id written so far (0 when none)."""
        async with self._engine.connect() as conn:
            value = (await conn.execute(select(func.max(session_ends.c.id)))).scalar()
            return int(value or 0)

    async def session_ends_after(
        self, after_id: int, also: Collection[int] = (), limit: int = 1000
    ) -> list[SessionEndRow]:
        """Ends with an id above ``after_id``, or in ``also`` (ids a follower saw
        skipped: a transaction that took its id earlier may commit later), in id
        order, at most ``limit``. A primary-key range scan."""
        condition = session_ends.c.id > after_id
        if also:
            condition = or_(condition, session_ends.c.id.in_(sorted(also)))
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(session_ends).where(condition).order_by(session_ends.c.id).limit(limit)
            )
            return [SessionEndRow(int(r.id), r.session_id, r.fingerprint, r.ended_ms) for r in rows]

    async def purge_session_ends(self, before_ms: int) -> int:
        """Delete ends older than ``before_ms`` (followers are long past them)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(session_ends).where(session_ends.c.ended_ms < before_ms)
            )
            return int(result.rowcount or 0)

    async def table_counts(self) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            out: dict[str, Any] = {}
            for table in (identities, challenges, sessions):
                out[table.name] = len((await conn.execute(select(table))).all())
            return out
