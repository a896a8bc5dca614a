"""Fixtures of the gateway integration tests: identities, databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.support import (
    Identities,
    issue_identities,
    postgres_or_reason,
    stop_postgres,
)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[object]:
    cluster = postgres_or_reason()
    if isinstance(cluster, str):
        pytest.skip(cluster)
    yield cluster
    stop_postgres()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run on SQLite (WAL) and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.new_database())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    return issue_identities(tmp_path_factory.mktemp("ca"))
