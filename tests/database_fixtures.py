"""Shared fixtures for the store, web and gateway tests: databases and identities.

- ``postgres_cluster`` (session): a throwaway PostgreSQL cluster on a loopback
  port, stopped by pid at the end; skipped with the reason when the server
  binaries are missing.
- ``database_url``: the same test on SQLite (WAL) and on that PostgreSQL
  (marked ``postgres``).
- ``identities`` (session): members of two orgs, an auditor and a revoked
  member, issued by the built-in CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.support import (
    Identities,
    PgCluster,
    issue_identities,
    postgres_or_reason,
    stop_postgres,
)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PgCluster]:
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
    cluster: PgCluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.new_database())


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    return issue_identities(tmp_path_factory.mktemp("ca"))
