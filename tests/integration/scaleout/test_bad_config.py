"""Bad shared-store configuration: one line naming the setting, a non-zero exit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.bench.loopback import PG_BIN, GatewayProcess, PgCluster, free_port
from tests.integration.scaleout.support import run_cli

pytestmark = pytest.mark.postgres


def _run_gateway(home: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        home, "gateway", "run",
        env={"ANCHORLINE_GATEWAY_PORT": str(free_port()), "ANCHORLINE_ANCHORING_ENABLED": "false"},
        **settings,
    )  # fmt: skip


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error ")]
    assert result.returncode != 0, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def test_postgresql_unreachable_at_start(tmp_path: Path) -> None:
    url = f"postgresql://anchorline@127.0.0.1:{free_port()}/nothing"
    line = _error_line(_run_gateway(tmp_path, database_url=url))
    assert line.startswith("error AL1001: gateway.database_url: cannot use PostgreSQL"), line


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[str]:
    """A cluster that checks passwords (the session's cluster trusts every login)."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    cluster = PgCluster()
    cluster.start(password="right-password")
    try:
        yield f"127.0.0.1:{cluster.port}"
    finally:
        cluster.stop()


def test_wrong_password(tmp_path: Path, password_cluster: str) -> None:
    url = f"postgresql://anchorline:wrong@{password_cluster}/postgres"
    line = _error_line(_run_gateway(tmp_path, database_url=url))
    assert "gateway.database_url" in line and "login refused" in line, line
    assert "wrong" not in line  # the password is never echoed


def test_a_second_process_on_one_sqlite_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = f"sqlite:///{tmp_path / 'events.db'}"
    first = GatewayProcess(
        tmp_path / "first",
        0,
        {
            "ANCHORLINE_HOME": str(home),
            "ANCHORLINE_GATEWAY_DATABASE_URL": db,
            "ANCHORLINE_ANCHORING_ENABLED": "false",
        },
    )
    first.start()
    try:
        line = _error_line(_run_gateway(home, database_url=db))
        assert line.startswith("error AL1001: gateway.database_url: the SQLite file"), line
        assert f"gateway pid {first.pid}" in line and "postgresql://" in line, line
        assert first.health() is not None  # the first one keeps serving
    finally:
        assert first.stop() == 0


def test_redis_unreachable_at_start(tmp_path: Path, postgres_cluster: PgCluster) -> None:
    line = _error_line(
        _run_gateway(
            tmp_path,
            database_url=postgres_cluster.new_database(),
            fanout="redis",
            redis_url=f"redis://:secret@127.0.0.1:{free_port()}/0",
        )
    )
    assert line.startswith("error AL1001: gateway.redis_url: cannot reach Redis at"), line
    assert "secret" not in line
