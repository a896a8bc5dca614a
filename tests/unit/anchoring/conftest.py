"""Fixtures of the anchoring unit tests: a migrated store (SQLite, and PostgreSQL where the
``postgres`` marker runs) with the identities the tests sign with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.anchoring.anchorfakes import Setup, setup_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    url = None
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_cluster").new_database())  # type: ignore[attr-defined]
    made = await setup_store(tmp_path, url)
    try:
        yield made
    finally:
        await made.engine.dispose()
