"""Shared test helpers for the gateway: a throwaway PostgreSQL cluster, a live server.

Importable as ``tests.integration.gateway.support`` from any gateway test.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore

# The throwaway PostgreSQL is shared with the benchmarks (scripts/bench/loopback.py).
from scripts.bench.loopback import PG_BIN as PG_BIN
from scripts.bench.loopback import PgCluster as PgCluster
from scripts.bench.loopback import free_port as free_port

_CLUSTER: list[PgCluster | str] = []


def postgres_or_reason() -> PgCluster | str:
    """The session's cluster (started on first use), or why there is none."""
    if not _CLUSTER:
        if not (PG_BIN / "initdb").is_file():
            _CLUSTER.append(f"PostgreSQL binaries not found in {PG_BIN} (ANCHORLINE_PG_BIN)")
        else:
            cluster = PgCluster()
            try:
                cluster.start()
                _CLUSTER.append(cluster)
                # Should the session die before its fixtures finish, still stop it by pid.
                atexit.register(cluster.stop)
            except (subprocess.SubprocessError, OSError) as exc:
                cluster.stop()
                _CLUSTER.append(f"could not start PostgreSQL: {exc}")
    return _CLUSTER[0]


def stop_postgres() -> None:
    if _CLUSTER and isinstance(_CLUSTER[0], PgCluster):
        _CLUSTER[0].stop()


def make_settings(
    home: Path, database_url: str, *, anchoring: bool = False, **gateway: Any
) -> Settings:
    """Settings for a test gateway in ``home`` (environment of this process ignored).

    The trust path is off unless ``anchoring``: these tests are about the fast path.
    """
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    fields = {"database_url": database_url, "sqlite_synchronous": "NORMAL", **gateway}
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(base.gateway, **fields),
        anchoring=dataclasses.replace(base.anchoring, enabled=anchoring),
    )


@dataclasses.dataclass
class Identities:
    """Identities issued by the built-in CA: two orgs, an auditor, a revoked member."""

    ca: EmbeddedCA
    alice: Path  # Org1 member
    bob: Path  # Org2 member
    carol: Path  # Org1 admin
    audrey: Path  # Org3 auditor
    mallory: Path  # Org2 member, revoked


def issue_identities(root: Path) -> Identities:
    ca = EmbeddedCA(root)
    ids = Identities(
        ca=ca,
        alice=ca.enroll("Org1", "alice", "member"),
        bob=ca.enroll("Org2", "bob", "member"),
        carol=ca.enroll("Org1", "carol", "admin"),
        audrey=ca.enroll("Org3", "audrey", "auditor"),
        mallory=ca.enroll("Org2", "mallory", "member"),
    )
    ca.revoke("Org2", "mallory")
    return ids


@dataclasses.dataclass
class RunningGateway:
    url: str
    app: web.Application
    runner: web.AppRunner


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings,
    trust: EmbeddedCA | TrustStore,
    *,
    configure: Callable[[web.Application], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs: Any,
) -> AsyncIterator[RunningGateway]:
    """The gateway app served on a loopback port for the duration of the block.

    ``trust``: the CA whose MSPs the gateway trusts, or a ready trust store;
    ``configure`` may set the app up further before it starts; with
    ``ssl_context`` it serves HTTPS and the URL is ``https://localhost:<port>``.
    """
    verifier = trust.trust_store() if isinstance(trust, EmbeddedCA) else trust
    app = create_app(settings, verifier=verifier, ledger="embedded", **kwargs)
    if configure is not None:
        configure(app)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    try:
        await runner.setup()
    except BaseException:
        # A start that failed part-way still closes what it opened (the SQLite
        # file's lock among them), as the process's exit would.
        await runner.cleanup()
        raise
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        origin = f"https://localhost:{port}" if ssl_context else f"http://127.0.0.1:{port}"
        yield RunningGateway(origin, app, runner)
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)
