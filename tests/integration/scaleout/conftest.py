"""Fixtures of the scale-out tests: real gateway processes, Redis and HAProxy on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench.loopback import missing_programs
from tests.integration.gateway.support import PgCluster
from tests.integration.scaleout.support import World, make_world


@pytest.fixture
def world(tmp_path: Path, postgres_cluster: PgCluster) -> World:
    reason = missing_programs()
    if reason:
        pytest.skip(reason)
    return make_world(tmp_path / "home", postgres_cluster.new_database())
