"""Shared test helpers for the gateway: a throwaway PostgreSQL cluster, a live server.

Importable as ``tests.integration.gateway.support`` from any gateway test.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore

PG_BIN = Path(os.environ.get("ANCHORLINE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """A PostgreSQL cluster in a temporary folder on a loopback port, stopped by pid."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="anchorline-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.pid: int | None = None
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            # initdb refuses to run as root: run the cluster as the postgres user.
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "anchorline",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start_server()

    def start_server(self) -> None:
        """Start the server on the cluster's data (again, after :meth:`stop_server`)."""
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.dir / "postgres.log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200",
            "start",
        )
        first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        self.pid = int(first)

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_server(self) -> None:
        """Stop the server (fast shutdown), keeping its data."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://anchorline@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._run(
            str(PG_BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "anchorline",
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return self.url(name)


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
