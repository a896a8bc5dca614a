"""What several gateway processes on one store must agree on, and what one SQLite file allows.

- :func:`shared_secret`: a random secret created once in ``shared_secrets``
  and read back by every process (the token-signing key when
  ``gateway.token_secret`` is not set), so a token issued by one process is
  accepted by the others and survives restarts.
- :class:`SqliteOwner`: SQLite serves one gateway process; a second one on
  the same file is refused at start with a one-line error naming
  ``gateway.database_url`` rather than left to fight over the write lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.clock import now_ms
from gateway.errors import ConfigError
from gateway.store.models import shared_secrets

TOKEN_SECRET = "token_secret"  # noqa: S105 - the row's name, not a secret


async def shared_secret(engine: AsyncEngine, name: str, size: int = 32) -> bytes:
    """The secret ``name``, created (``size`` random bytes) by whichever process asks first."""
    async with engine.begin() as conn:
        await conn.execute(
            pg_insert(shared_secrets)
            .values(name=name, value=secrets.token_bytes(size), created_ms=now_ms())
            .on_conflict_do_nothing(index_elements=[shared_secrets.c.name])
        )
        value = (
            await conn.execute(select(shared_secrets.c.value).where(shared_secrets.c.name == name))
        ).scalar_one()
    return bytes(value)


class SqliteOwner:
    """An exclusive lock on ``<database>.lock``, held while this process serves the file.

    The kernel drops the lock when the process dies (SIGKILL included), so a
    crashed gateway never leaves the file locked.
    """

    def __init__(self, database: str | Path) -> None:
        self.path = Path(f"{database}.lock")
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ConfigError` naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held while the gateway runs
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"gateway.database_url: the SQLite file {self.path.with_suffix('')} is served by "
                f"gateway pid {holder}; SQLite serves one process: stop it, or use a "
                "postgresql:// URL to run several gateways"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
