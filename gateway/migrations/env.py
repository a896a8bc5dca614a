"""Alembic environment: runs on a connection handed in by gateway.store.engine.migrate.

Used from the command line too (``alembic -c gateway/migrations/alembic.ini``),
with ``sqlalchemy.url`` set there or in ``-x url=...``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from gateway.store.engine import create_engine
from gateway.store.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("set sqlalchemy.url or pass -x url=...")
    asyncio.run(_run_from_url(url))
