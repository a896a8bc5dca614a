"""A cluster of real processes on loopback, for the scale-out tests and benchmarks
(``scripts/bench/scaleout.py``; the tests import it as ``scripts.bench.loopback``).

- :class:`PgCluster`: a throwaway PostgreSQL cluster (``initdb`` in a temporary folder).
- :class:`World`: the embedded ledger's CA and enrolled members in a gateway home.
- :class:`RedisServer`: Debian's ``redis-server``, no persistence, on a free port.
- :class:`Balancer`: Debian's ``haproxy`` in front of the gateways: WebSocket-only
  Socket.IO (no sticky sessions: any gateway serves any client), round robin,
  health checks on ``/healthz`` every 200 ms, sessions of a backend marked down
  cut at once so their clients reconnect to a live one.
- :class:`GatewayProcess`: ``python -m gateway gateway run`` with its settings in
  the environment, readiness by polling ``/healthz``, logs in its folder.

Everything listens on 127.0.0.1, writes its pid file and log under the folder
given, and is stopped by its own pid (SIGTERM, then SIGKILL after a timeout);
nothing is looked up by name. Each ``start`` waits until the process answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.config import load_settings
from gateway.identity.ca import EmbeddedCA
from gateway.ledger.embedded import EmbeddedLedger, config_from_settings

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("ANCHORLINE_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_programs() -> str | None:
    """Why the cluster cannot run here (None when it can): the skip reason of a test."""
    absent = [p for p in (REDIS_SERVER, HAPROXY) if not Path(p).is_file()]
    if absent:
        return f"not installed: {', '.join(absent)} (scripts/setup installs redis-server, haproxy)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Process:
    """One child process we started, stopped by its pid."""

    name = "process"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=REPO,
            )
        (self.folder / f"{self.name}.pid").write_text(str(self.proc.pid))

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still alive after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL (chaos) and reap."""
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


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

    def start(self, password: str | None = None) -> None:
        """Create the cluster and start it. Logins are trusted, or with ``password``
        checked (user ``anchorline``, SCRAM)."""
        if self._as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")
        auth = ["-A", "trust"]
        if password is not None:
            pwfile = self.dir / "pw"
            pwfile.write_text(password + "\n")
            if self._as_postgres:
                shutil.chown(pwfile, user="postgres")
            auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), *auth,
            "-U", "anchorline", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        if password is not None:
            (self.dir / "pw").unlink()
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


@dataclasses.dataclass
class World:
    home: Path
    database_url: str
    members: list[tuple[Path, str]]

    def settings_env(self, **extra: str) -> dict[str, str]:
        return {
            "ANCHORLINE_LEDGER_KIND": "embedded",
            "ANCHORLINE_ANCHORING_BATCH_MAX_MS": "50",
            "ANCHORLINE_ANCHORING_BATCH_MAX_EVENTS": "200",
            "ANCHORLINE_ANCHORING_RETRY_MAX_MS": "500",
            **extra,
        }


def make_world(home: Path, database_url: str, members: int = 4) -> World:
    """The embedded ledger's CA and members (the ledger is closed again: gateways open it)."""
    settings = load_settings({"ANCHORLINE_HOME": str(home)})
    ledger = EmbeddedLedger.open(config_from_settings(settings))
    ledger.close_sync()
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    orgs = ("Org1", "Org2")
    return World(
        home,
        database_url,
        [
            (ca.enroll(orgs[i % 2], f"member{i}", "member"), f"{orgs[i % 2]}MSP")
            for i in range(members)
        ],
    )


class RedisServer(_Process):
    name = "redis"

    def __init__(self, folder: Path, port: int | None = None) -> None:
        super().__init__(folder)
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self._spawn(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--pidfile",
                str(self.folder / "redis-server.pid"),
                "--daemonize",
                "no",
            ]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            if not self.running:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {self.port}:\n{self.tail()}")


def haproxy_config(
    port: int, backends: Sequence[tuple[str, int]], *, stats_port: int | None = None
) -> str:
    """The balancer's configuration (also the README's example)."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{p} check inter 200ms fall 2 rise 1" for name, p in backends
    )
    stats = (
        f"\nfrontend stats\n    bind 127.0.0.1:{stats_port}\n    stats enable\n"
        "    stats uri /stats\n"
        if stats_port
        else ""
    )
    return f"""global
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A WebSocket, once upgraded, is a tunnel: idle up to the Engine.IO heartbeat.
    timeout tunnel 120s

frontend anchorline
    bind 127.0.0.1:{port}
    # Socket.IO over WebSocket only: long-polling would spread one client's requests
    # over several gateways, which share no Engine.IO session.
    http-request deny deny_status 400 if {{ path_beg /socket.io/ }} !{{ hdr(upgrade) -i websocket }}
    default_backend gateways

backend gateways
    # One TCP connection per client, so no sticky sessions; any gateway serves any
    # client (sessions, tokens and events live in PostgreSQL).
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    # A gateway marked down (dead, or draining for a stop) loses its clients at once;
    # they reconnect through the balancer to a live one and resume.
    default-server on-marked-down shutdown-sessions
{servers}
{stats}"""


class Balancer(_Process):
    name = "haproxy"

    def __init__(self, folder: Path, backends: Sequence[tuple[str, int]]) -> None:
        super().__init__(folder)
        self.port = free_port()
        self.config = folder / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, backends))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        check = subprocess.run(
            [HAPROXY, "-c", "-q", "-f", str(self.config)], capture_output=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refuses {self.config}: {check.stderr.decode()}")
        self._spawn(
            [HAPROXY, "-db", "-f", str(self.config), "-p", str(self.folder / "haproxy-run.pid")]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            if not self.running:
                break
            time.sleep(0.05)
        raise RuntimeError(f"haproxy did not listen on {self.port}:\n{self.tail()}")


def http_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET ``url``: (status, JSON body or None)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, orjson.loads(exc.read())
        except orjson.JSONDecodeError:
            return exc.code, None


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``ANCHORLINE_*`` variables, running this
    tree (``PYTHONPATH``), with ``extra`` added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANCHORLINE_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


class GatewayProcess(_Process):
    """One gateway process; ``settings`` are ``ANCHORLINE_*`` variables."""

    def __init__(self, folder: Path, index: int, settings: Mapping[str, str]) -> None:
        self.name = f"gateway{index}"
        super().__init__(folder)
        self.index = index
        self.port = free_port()
        self.settings = dict(settings)
        self.cpu: list[int] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, *, wait: bool = True) -> None:
        env = clean_env({**self.settings, "ANCHORLINE_GATEWAY_PORT": str(self.port)})
        argv = [sys.executable, "-m", "gateway", "gateway", "run", "--log-level", "INFO"]
        if self.cpu is not None:
            argv = ["taskset", "-c", ",".join(map(str, self.cpu)), *argv]
        self._spawn(argv, env)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with contextlib.suppress(OSError):
                status, body = http_json(f"{self.url}/healthz", 1.0)
                if status == 200:
                    return dict(body)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = http_json(f"{self.url}/healthz", 1.0)
        except OSError:
            return None
        return dict(body) if isinstance(body, dict) else {"http_status": status}


@dataclasses.dataclass
class Cluster:
    """Gateways on one PostgreSQL (and Redis when given) behind HAProxy."""

    folder: Path
    gateways: list[GatewayProcess]
    balancer: Balancer
    redis: RedisServer | None

    @property
    def url(self) -> str:
        return self.balancer.url

    def holder(self, timeout: float = 15.0) -> GatewayProcess:
        """The gateway that holds the anchor lease (waits until one does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for gw in self.gateways:
                if gw.running:
                    body = gw.health()
                    if body and body.get("anchor_lease") == "held":
                        return gw
            time.sleep(0.05)
        raise RuntimeError("no gateway took the anchor lease")


@contextlib.contextmanager
def cluster(
    folder: Path,
    *,
    database_url: str,
    home: Path,
    processes: int = 2,
    redis: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Start Redis (optional), ``processes`` gateways and HAProxy; stop them all at the end."""
    started: list[_Process] = []
    try:
        server = None
        if redis:
            server = RedisServer(folder / "redis")
            server.start()
            started.append(server)
        common = {
            "ANCHORLINE_HOME": str(home),
            "ANCHORLINE_GATEWAY_DATABASE_URL": database_url,
            "ANCHORLINE_GATEWAY_REDIS_URL": server.url if server else "",
            "ANCHORLINE_GATEWAY_FANOUT": "redis" if server else "local",
            **(settings or {}),
        }
        gateways = [GatewayProcess(folder / f"g{i}", i, common) for i in range(processes)]
        for gw in gateways:
            gw.start(wait=False)
            started.append(gw)
        for gw in gateways:
            gw.wait_ready()
        balancer = Balancer(folder / "haproxy", [(gw.name, gw.port) for gw in gateways])
        balancer.start()
        started.append(balancer)
        yield Cluster(folder, gateways, balancer, server)
    finally:
        for proc in reversed(started):
            with contextlib.suppress(Exception):
                proc.stop()
