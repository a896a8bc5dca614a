"""The anchor lease: exactly one gateway process anchors, fenced by an epoch.

One row of ``leases`` names the holder, its epoch (the fencing token) and
when the lease runs out, in the database's clock so the processes' own
clocks never matter. Taking the lease over increments the epoch; every
trust-path write (:class:`~gateway.anchoring.outbox.BatchStore`) first reads
the row ``FOR SHARE`` and checks holder and epoch inside its own
transaction. So a holder that stalled past its expiry and was replaced
cannot write another batch or status: its write fails with
:class:`~gateway.anchoring.errors.LeaseLost`, and a takeover waits for a
write in flight to commit first.

A lease row rather than a session advisory lock: an advisory lock is tied to
one connection, so a pooled connection that the pool recycles, or a
PostgreSQL restart, drops it without the holder noticing, and it carries no
token a write could be fenced with.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.anchoring.errors import LeaseLost

ANCHOR_LEASE: Final = "anchor"
_NOW_MS: Final = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

_ACQUIRE = text(
    f"""
    INSERT INTO leases (name, holder, epoch, expires_ms, acquired_ms)
    VALUES (:name, :holder, 1, {_NOW_MS} + :ttl, {_NOW_MS})
    ON CONFLICT (name) DO UPDATE
        SET holder = EXCLUDED.holder, epoch = leases.epoch + 1,
            expires_ms = EXCLUDED.expires_ms, acquired_ms = EXCLUDED.acquired_ms
        WHERE leases.holder IS NULL OR leases.expires_ms < EXCLUDED.acquired_ms
    RETURNING epoch
    """  # noqa: S608 (constant SQL)
)
_RENEW = text(
    f"""
    UPDATE leases SET expires_ms = {_NOW_MS} + :ttl
    WHERE name = :name AND holder = :holder AND epoch = :epoch
    """  # noqa: S608
)
_RELEASE = text(
    "UPDATE leases SET holder = NULL, expires_ms = 0 "
    "WHERE name = :name AND holder = :holder AND epoch = :epoch"
)
_FENCE = text(
    "SELECT epoch FROM leases WHERE name = :name AND holder = :holder AND epoch = :epoch FOR SHARE"
)
_STATE = text(
    f"SELECT holder, epoch, expires_ms - {_NOW_MS} AS left_ms FROM leases WHERE name = :name"  # noqa: S608
)


def holder_id() -> str:
    """A name for this process that no other process, nor a restart of it, shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclasses.dataclass(frozen=True)
class Grant:
    """The lease as this process holds it: the epoch is the fencing token."""

    holder: str
    epoch: int


@dataclasses.dataclass(frozen=True)
class LeaseState:
    """What the lease row says now (for ``/healthz`` and ``/metrics``)."""

    holder: str | None
    epoch: int
    left_ms: int


class Lease:
    """One named lease in PostgreSQL, taken and renewed by this process."""

    def __init__(
        self, engine: AsyncEngine, *, ttl_ms: int, name: str = ANCHOR_LEASE, holder: str = ""
    ) -> None:
        self._engine = engine
        self.name = name
        self.holder = holder or holder_id()
        self.ttl_ms = ttl_ms
        self.grant: Grant | None = None

    @property
    def held(self) -> bool:
        return self.grant is not None

    async def try_acquire(self) -> Grant | None:
        """Take the lease if it is free or ran out; returns the grant, or None."""
        async with self._engine.begin() as conn:
            epoch = (
                await conn.execute(
                    _ACQUIRE, {"name": self.name, "holder": self.holder, "ttl": self.ttl_ms}
                )
            ).scalar()
        self.grant = None if epoch is None else Grant(self.holder, int(epoch))
        return self.grant

    async def renew(self) -> bool:
        """Push the expiry out by the TTL; False (and no grant) once another holder has it."""
        grant = self.grant
        if grant is None:
            return False
        async with self._engine.begin() as conn:
            done = await conn.execute(_RENEW, self._params(grant) | {"ttl": self.ttl_ms})
        if done.rowcount != 1:
            self.grant = None
            return False
        return True

    async def release(self) -> None:
        """Give the lease up now, so another process takes over without waiting for expiry."""
        grant, self.grant = self.grant, None
        if grant is not None:
            async with self._engine.begin() as conn:
                await conn.execute(_RELEASE, self._params(grant))

    def drop(self) -> None:
        """Forget the grant without telling the database (it is unreachable, or lost)."""
        self.grant = None

    async def fence(self, conn: AsyncConnection) -> None:
        """Inside a write transaction: raise :class:`LeaseLost` unless we still hold it.

        The row stays share-locked until ``conn`` commits, so a takeover cannot
        slip in between this check and the write.
        """
        grant = self.grant
        if grant is None:
            raise LeaseLost(f"this gateway does not hold the {self.name} lease")
        if (await conn.execute(_FENCE, self._params(grant))).first() is None:
            self.grant = None
            raise LeaseLost(
                f"the {self.name} lease (epoch {grant.epoch}) was taken over by another gateway"
            )

    async def state(self) -> LeaseState | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_STATE, {"name": self.name})).first()
        if row is None:
            return None
        return LeaseState(row.holder, int(row.epoch), int(row.left_ms))

    def _params(self, grant: Grant) -> dict[str, object]:
        return {"name": self.name, "holder": grant.holder, "epoch": grant.epoch}
