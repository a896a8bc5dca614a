"""What a gateway process does differently when it shares its store with other processes.

On SQLite (the embedded default) a process owns its database file: a second
process on the same file is refused at start (:class:`~gateway.store.shared.SqliteOwner`).
On PostgreSQL any number of processes serve the same channels; each of them,
at start, reads the shared token-signing key (unless ``gateway.token_secret``
is set) so tokens issued by one are accepted by all, and follows the
sessions the others end (logouts, within about 250 ms:
:class:`~gateway.auth.revocation.SessionEndFollower`). Unreachable databases
and refused logins are turned into one-line :class:`~gateway.errors.ConfigError`
naming ``gateway.database_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth.revocation import SessionEndFollower
from gateway.auth.sessions import SessionService
from gateway.auth.tokens import TokenSigner
from gateway.errors import ConfigError
from gateway.store.shared import TOKEN_SECRET, SqliteOwner, shared_secret
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def is_shared(engine: AsyncEngine) -> bool:
    """True when other gateway processes may use the same store (PostgreSQL)."""
    return engine.dialect.name == "postgresql"


def where(engine: AsyncEngine) -> str:
    """The database as an operator names it, without the password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database}"
    return f"PostgreSQL {url.username or ''}@{url.host or 'localhost'}:{url.port or 5432}/" + (
        url.database or ""
    )


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    if "password" in text.lower() or "authentication" in text.lower():
        return f"login refused ({text}): check the user and password in the URL"
    return text


async def reach_store(engine: AsyncEngine, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` (the first use of the store); a connection failure becomes a
    :class:`ConfigError` naming ``gateway.database_url``."""
    try:
        await step()
    except (OSError, DBAPIError, SQLAlchemyError) as exc:
        raise ConfigError(
            f"gateway.database_url: cannot use {where(engine)}: {_reason(exc)}"
        ) from None


@contextlib.asynccontextmanager
async def membership(
    engine: AsyncEngine,
    sessions: SessionService,
    *,
    token_secret_configured: bool,
    prepare: Callable[[], Awaitable[None]] | None = None,
    ends: SessionEndFollower | None = None,
) -> AsyncIterator[None]:
    """Hold this process's place beside the others for the duration of the block.

    ``prepare`` (the migrations) runs once the SQLite file is ours and before
    the shared key is read. On a shared store ``ends`` (the sessions the other
    processes end) is followed from the ends written before this process joined.
    """
    owner: SqliteOwner | None = None
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        owner = SqliteOwner(database)
        owner.acquire()
    follower: asyncio.Task[None] | None = None
    try:
        if prepare is not None:
            await reach_store(engine, prepare)
        if is_shared(engine):
            if not token_secret_configured:
                secret: list[bytes] = []

                async def _read() -> None:
                    secret.append(await shared_secret(engine, TOKEN_SECRET))

                await reach_store(engine, _read)
                sessions.use_signer(TokenSigner(secret[0]))
            if ends is not None:
                await reach_store(engine, ends.start)
                follower = asyncio.create_task(ends.run(), name="session-end-follower")
            log.info("shared store: %s (pid %d)", where(engine), os.getpid())
        yield
    finally:
        await cancel_and_wait(follower)
        if owner is not None:
            owner.release()


__all__ = ["is_shared", "membership", "reach_store", "where"]
