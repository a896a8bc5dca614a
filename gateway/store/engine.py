"""Engine creation and migrations for SQLite (WAL, the default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
# The advisory lock key migrations run under on PostgreSQL ("anchorln" in ASCII).
_MIGRATION_LOCK = 0x616E63686F726C6E


def normalise_url(url: str) -> str:
    """Map plain ``sqlite:`` / ``postgresql:`` URLs to their async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite").render_as_string(False))
    if backend in ("postgresql", "postgres"):
        return str(parsed.set(drivername="postgresql+asyncpg").render_as_string(False))
    raise ConfigError(
        f"gateway.database_url: unsupported database {backend!r}; use sqlite:/// or postgresql://"
    )


def create_engine(url: str, sqlite_synchronous: str = "FULL") -> AsyncEngine:
    """An async engine; SQLite connections get WAL and the chosen durability."""
    sync_mode = sqlite_synchronous.upper()
    if sync_mode not in _SYNCHRONOUS:
        raise ConfigError(
            f"gateway.sqlite_synchronous: {sqlite_synchronous!r} is not one of "
            + ", ".join(_SYNCHRONOUS)
        )
    full = normalise_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, connect_args={"timeout": 30})

        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sync_mode}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        event.listen(engine.sync_engine, "connect", _on_connect)
        return engine
    engine = create_async_engine(full, pool_size=5, max_overflow=5)
    # Not pool_pre_ping: on the asyncpg adapter it is three round trips per checkout
    # (BEGIN, ";", ROLLBACK), which tripled the round trips of a commit and was most of
    # the shared store's CPU per event. A connection that PostgreSQL closed (a restart,
    # an administrator's kill) has had its socket closed, which asyncpg has seen: the
    # checkout below refuses it without a round trip and the pool connects anew. One
    # that dies silently fails its statement and SQLAlchemy discards the pool's
    # connections then.
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    driver = getattr(dbapi_conn, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the PostgreSQL connection was closed by the server")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (idempotent)."""

    def _upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several gateways starting together on one database: one migrates, the
            # others wait for its commit and then find nothing to do.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Downgrade the database behind ``engine`` to ``revision``."""

    def _downgrade(connection: Connection) -> None:
        command.downgrade(_alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_downgrade)
