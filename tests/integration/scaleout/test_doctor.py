"""``anchorline doctor`` says whether the shared store and Redis answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scripts.bench.loopback import PgCluster, RedisServer, free_port, missing_programs
from tests.integration.scaleout.support import run_cli

pytestmark = pytest.mark.postgres


def _doctor(home: Path, **gateway: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, "doctor", **gateway)


def test_doctor_reaches_postgresql_and_redis(tmp_path: Path, postgres_cluster: PgCluster) -> None:
    if missing_programs():
        pytest.skip(missing_programs() or "")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        ok = _doctor(
            tmp_path,
            database_url=postgres_cluster.new_database(),
            fanout="redis",
            redis_url=redis.url,
        )
    finally:
        redis.stop()
    assert "yes, PostgreSQL" in ok.stdout and "yes, Redis" in ok.stdout, ok.stdout
    assert "error: gateway." not in ok.stdout


def test_doctor_names_the_setting_of_what_it_cannot_reach(tmp_path: Path) -> None:
    bad = _doctor(
        tmp_path,
        database_url=f"postgresql://anchorline@127.0.0.1:{free_port()}/x",
        fanout="redis",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    assert bad.returncode == 1
    assert "error: gateway.database_url: cannot use PostgreSQL" in bad.stdout, bad.stdout
    assert "error: gateway.redis_url: cannot reach Redis" in bad.stdout, bad.stdout
