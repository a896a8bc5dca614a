"""Side by side: our gateway, stock python-socketio and Node's socket.io, same load, same run.

Three servers on loopback, each driven by the same Node ``socket.io-client``
load generator (``node/load.mjs``: WebSocket only, no compression, open-loop
rate, receivers in one Node process and emitters in another):

- **node**: Node's socket.io 4.x as a plain relay (``node/relay.mjs``);
- **stock**: stock python-socketio on aiohttp as a plain relay (``stock_relay.py``);
- **ours**: ``anchorline gateway run``, every event signature-checked and
  durably committed (SQLite WAL, synchronous=FULL) before its ack, then fanned out.

Every event is signed by the generator (the relays ignore the signature, so all
three see the same bytes). For each client count (2 emitters, the rest
receivers, all in one room) a climb-and-bisect search (``stats.find_capacity``)
finds the highest offered rate whose trial delivers every acknowledged event
to every receiver with a receive p99 ≤ 50 ms, no error and the generator on
schedule; the table gives the deliveries/s there, the ack p50/p99 there, and
what bounded it (the CPU of the server or of the load generator, or neither).
With two cores or more the server is pinned to core 0 and the load generator
to core 1 (``taskset``).

``overload`` offers our gateway 1.5× and 3× its capacity at one client count
for a bounded time and records what happens, and the latency in the seconds
after: the ``overload`` benchmark of ``scripts/bench/run`` (:func:`bench_overload`),
or here with ``--overload-clients``.

    .venv/bin/python scripts/bench/gateway_events.py [--smoke] [--servers ours,stock,node]
        [--clients 10,100,500,1000] [--trial-seconds 3] [--overload-clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from nodejs import LOAD_JS, RELAY_JS, node_modules  # noqa: E402
from report import Section, Table  # noqa: E402
from stats import Capacity, Trial, find_capacity, latency_summary  # noqa: E402

from gateway.client import MemberClient  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402

HERE = Path(__file__).resolve().parent
P99_LIMIT_MS = 50.0
EMITTERS = 2
SERVERS = ("node", "stock", "ours")
LABELS = {
    "node": "Node socket.io relay",
    "stock": "stock python-socketio relay",
    "ours": "our gateway (signed, durable)",
}


def pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes for (server, load generator): separate cores, when there are two."""
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> int:
    """Soft fd limit up to the hard one (1,000 clients need 1,000 sockets on each side)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status in (200, 400, 404):
                    return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    stop_process(proc)
    raise RuntimeError(f"server did not start; see {log}")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- servers ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    kind: str
    url: str
    proc: subprocess.Popen[bytes]
    emitters: list[dict[str, str]]
    receiver_token: str
    work: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def _key_pem(msp: Path) -> str:
    key_file = next(p for p in sorted((msp / "keystore").iterdir()) if p.is_file())
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def login(url: str, msp: Path, msp_id: str) -> str:
    """A session token for the member whose MSP folder is ``msp`` (its client closed)."""
    client = MemberClient.from_msp(url, msp, msp_id)
    try:
        return (await client.login()).token
    finally:
        await client.close()


def start_gateway(home: Path, port: int, pin: list[str]) -> subprocess.Popen[bytes]:
    """``anchorline gateway run`` in ``home``: fast path only, durable commits, loopback."""
    env = {
        **os.environ,
        "ANCHORLINE_HOME": str(home),
        "ANCHORLINE_CONFIG": str(home / "anchorline.toml"),
        "ANCHORLINE_GATEWAY_PORT": str(port),
        "ANCHORLINE_GATEWAY_RATE_LIMIT_IDENTITY_PER_MIN": "100000",
        "ANCHORLINE_GATEWAY_RATE_LIMIT_ADDRESS_PER_MIN": "100000",
        # Capacity, not the emit budgets: two emitters carry the whole load.
        "ANCHORLINE_GATEWAY_EMIT_IDENTITY_PER_S": "0",
        "ANCHORLINE_GATEWAY_EMIT_CONNECTION_PER_S": "0",
        "ANCHORLINE_GATEWAY_SESSION_TTL_S": "3600",
        "ANCHORLINE_GATEWAY_DATABASE_URL": f"sqlite:///{home / 'events.db'}",
        "ANCHORLINE_GATEWAY_SQLITE_SYNCHRONOUS": "FULL",
        # The fast path alone: the trust path has its own benchmark (anchoring.py).
        "ANCHORLINE_ANCHORING_ENABLED": "0",
        "PYTHONPATH": str(REPO),
    }
    (home / "anchorline.toml").write_text("")
    cmd = [*pin, sys.executable, "-m", "gateway.cli.main", "gateway", "run"]
    with open(home / "server.log", "wb") as log:
        return subprocess.Popen(
            [*cmd, "--log-level", "WARNING"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def start_server(kind: str, work: Path, modules: Path | None, pin: list[str]) -> Server:
    home = work / kind
    home.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The gateway trusts the built-in CA of its home (ANCHORLINE_HOME/embedded/ca).
    ca = EmbeddedCA(home / "embedded" / "ca")
    emitter_dirs = [ca.enroll("Org1", f"{kind}-emitter{i}", "member") for i in range(EMITTERS)]
    receiver_dir = ca.enroll("Org2", f"{kind}-receiver", "member")
    keys = [_key_pem(d) for d in emitter_dirs]
    log = home / "server.log"
    if kind == "ours":
        proc = start_gateway(home, port, pin)
        wait_healthy(f"{url}/healthz", proc, log)
        tokens = [asyncio.run(login(url, d, "Org1MSP")) for d in emitter_dirs]
        receiver = asyncio.run(login(url, receiver_dir, "Org2MSP"))
    else:
        if kind == "node":
            assert modules is not None
            cmd = [*pin, "node", str(RELAY_JS), str(modules), str(port)]
        else:
            cmd = [*pin, sys.executable, str(HERE / "stock_relay.py"), str(port)]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=out)
        wait_healthy(f"{url}/socket.io/?EIO=4&transport=polling", proc, log)
        tokens, receiver = ["relay"] * EMITTERS, "relay"
    emitters = [{"token": t, "key_pem": k} for t, k in zip(tokens, keys, strict=True)]
    return Server(kind, url, proc, emitters, receiver, home)


# -- load generator ---------------------------------------------------------------------------


class NodeProcess:
    """One ``load.mjs`` process: JSON commands in, one JSON line out per command."""

    def __init__(self, cfg: dict[str, Any], cfg_file: Path, pin: list[str]) -> None:
        cfg_file.write_text(json.dumps(cfg))
        self.proc = subprocess.Popen(
            [*pin, "node", "--max-old-space-size=2048", str(LOAD_JS), str(cfg_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def reply(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return {"error": f"no answer within {timeout_s:.0f} s"}
        if not line:
            err = self.proc.stderr.read()[-500:] if self.proc.stderr else ""
            return {"error": f"load generator exited: {err}"}
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, cmd: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.reply(timeout_s)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write('{"cmd": "exit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@dataclasses.dataclass
class Room:
    """Receivers and emitters connected to one server, in one room."""

    server: Server
    clients: int
    receivers: NodeProcess
    emitters: NodeProcess

    @property
    def n_receivers(self) -> int:
        return self.clients - EMITTERS


@contextlib.contextmanager
def room(server: Server, clients: int, modules: Path, pin: list[str], pad: int) -> Iterator[Room]:
    channel = f"bench-{clients}-{time.monotonic_ns()}"
    base = {"url": server.url, "node_modules": str(modules), "channel": channel, "pad": pad}
    work = server.work
    recv = NodeProcess(
        {
            **base,
            "role": "receivers",
            "receivers": clients - EMITTERS,
            "receiver_token": server.receiver_token,
        },
        work / f"recv-{channel}.json",
        pin,
    )
    emit: NodeProcess | None = None
    try:
        ready = recv.reply(120)
        if not ready.get("ready"):
            raise RuntimeError(f"receivers did not connect: {ready}")
        emit = NodeProcess(
            {**base, "role": "emitters", "emitters": server.emitters},
            work / f"emit-{channel}.json",
            pin,
        )
        ready = emit.reply(60)
        if not ready.get("ready"):
            raise RuntimeError(f"emitters did not connect: {ready}")
        yield Room(server, clients, recv, emit)
    finally:
        if emit is not None:
            emit.close()
        recv.close()


def scrape(server: Server) -> dict[str, float]:
    """Our gateway's cumulative /metrics figures ({} for the relays)."""
    if server.kind != "ours":
        return {}
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
    return out


def commit_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Group commits during a trial: how many, mean ms, and the bucket holding their p99."""
    name = "anchorline_commit_latency_seconds"
    count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
    if not count:
        return {}
    total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
    prefix = f'{name}_bucket{{le="'
    buckets = sorted(
        (float(k[len(prefix) : -2]), after[k] - before.get(k, 0))
        for k in after
        if k.startswith(prefix) and "+Inf" not in k
    )
    p99_le = next((b for b, n in buckets if n >= 0.99 * count), float("inf"))
    return {
        "commits": count,
        "commit_mean_ms": total / count * 1000,
        "commit_p99_le_ms": p99_le * 1000,
    }


def run_trial(
    rm: Room, rate: float, seconds: float, max_events: int, settle_s: float = 0.3
) -> Trial:
    """Offer ``rate`` events/s for ``seconds``; pass when nothing is lost and p99 ≤ 50 ms.

    Deliveries still in flight after the last ack get up to ``settle_s`` seconds to
    arrive (at least 0.3 s) before the count; what has not arrived then is lost.
    """
    trial_id = f"t{time.monotonic_ns()}"
    started = rm.receivers.command({"cmd": "start", "trial": trial_id}, 30)
    if not started.get("started"):
        return Trial(rate, False, f"receivers: {started}")
    pids = (rm.server.pid, rm.receivers.proc.pid, rm.emitters.proc.pid)
    metrics0 = scrape(rm.server)
    cpu0 = [cpu_seconds(p) for p in pids]
    wall0 = time.monotonic()
    sent = rm.emitters.command(
        {
            "cmd": "run",
            "trial": trial_id,
            "rate": rate,
            "duration_s": seconds,
            "max_events": max_events,
        },
        seconds + 120,
    )
    # Deliveries still in flight when the last ack came back.
    replied = time.monotonic()
    expected_now = int(sent.get("acked", 0)) * rm.n_receivers
    settle_until = replied + max(0.3, settle_s)
    time.sleep(0.3)
    while time.monotonic() < settle_until and "error" not in sent:
        if rm.receivers.command({"cmd": "count"}, 30).get("delivered", 0) >= expected_now:
            break
        time.sleep(0.2)
    settled_s = time.monotonic() - replied
    got = rm.receivers.command({"cmd": "stop"}, 60)
    wall = time.monotonic() - wall0
    # CPU as a share of one core while the load ran (the generator's pre-signing left out).
    active = max(1e-3, float(sent.get("busy_s", 0) or 0) + 0.3)
    cpu_delta = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    cpu = [
        cpu_delta[0] / min(wall, active + settled_s),
        cpu_delta[1] / min(wall, active + settled_s),
        float(sent.get("cpu_s", cpu_delta[2]) or 0) / active,
    ]
    commits = commit_figures(metrics0, scrape(rm.server))
    if "error" in sent or "error" in got:
        return Trial(rate, False, f"load generator: {sent.get('error') or got.get('error')}")
    sent_at: dict[str, float] = sent.pop("sent_at")
    latencies = [t - sent_at[i] for i, t in got["samples"] if i in sent_at]
    delivery = latency_summary(latencies)
    ack = latency_summary(sent.pop("ack_samples_ms"))
    expected = sent["acked"] * rm.n_receivers
    figures = {
        "offered_rate": rate,
        "sent": sent["sent"],
        "acked": sent["acked"],
        "errors": sent["errors"],
        "last_error": sent["last_error"],
        "seconds": sent["seconds"],
        "sent_per_s": sent["sent_per_s"],
        "accepted_per_s": sent["accepted_per_s"],
        "delivered": got["delivered"],
        "expected_deliveries": expected,
        "deliveries_per_s": got["delivered"] / sent["seconds"],
        "disconnected": got["disconnected"],
        "ack_ms": ack,
        "delivery_ms": delivery,
        "server_cpu": cpu[0],
        "loadgen_cpu": cpu[1] + cpu[2],
        "settle_s": settled_s,
        **commits,
    }
    why = ""
    if sent["errors"]:
        why = f"{sent['errors']} errors ({json.dumps(sent['last_error'])[:120]})"
    elif sent["acked"] < sent["sent"]:
        why = f"{sent['sent'] - sent['acked']} events unacknowledged after 3 s"
    elif got["delivered"] < expected or got["disconnected"]:
        why = (
            f"lost deliveries: {got['delivered']}/{expected}, "
            f"{got['disconnected']} receivers disconnected"
        )
    elif sent["sent_per_s"] < 0.9 * rate:
        why = f"load generator behind schedule ({sent['sent_per_s']:.0f}/s sent)"
    elif delivery["p99"] is None or delivery["p99"] > P99_LIMIT_MS:
        why = f"receive p99 {delivery['p99'] or 0:.1f} ms > {P99_LIMIT_MS:g} ms"
    return Trial(rate, not why, why, figures)


def bound_of(capacity: Capacity) -> str:
    """What stopped the climb: the server's CPU, the load generator's, or neither."""
    t = capacity.failed
    if t is None:
        return capacity.stopped
    f = t.figures
    generator_full = "load generator behind" in t.why or f.get("loadgen_cpu", 0) >= 0.85
    if generator_full and f.get("server_cpu", 0) < 0.85:
        return "load generator"
    if f.get("server_cpu", 0) >= 0.85:
        return "server CPU"
    if f.get("commit_p99_le_ms", 0) > 20:
        return (
            f"store commit latency (durable SQLite commits ≈ {f['commit_mean_ms']:.0f} ms, "
            f"p99 ≤ {f['commit_p99_le_ms']:g} ms)"
        )
    return f"latency before CPU ({t.why})" if t.why else "latency"


@dataclasses.dataclass
class Scale:
    clients: list[int]
    trial_s: float
    budget_s: float
    max_trials: int
    bisect_steps: int
    overload_s: float
    recovery_s: float
    retry: bool = True
    max_events: int = 100_000


FULL = Scale([10, 100, 500, 1000], 2.5, 60.0, 9, 3, 10.0, 2.0)
SMOKE = Scale([10], 0.5, 8.0, 3, 1, 0.5, 0.5, retry=False)


def capacity_at(
    rm: Room, scale: Scale, progress: Callable[[str], None]
) -> tuple[Capacity, dict[str, Any]]:
    receivers = rm.n_receivers
    start = max(1.0, 3000.0 / receivers)
    max_rate = max(start, 240_000.0 / receivers)

    def trial(rate: float) -> Trial:
        t = run_trial(rm, rate, scale.trial_s, scale.max_events)
        if not t.ok and t.why.startswith("receive p99") and scale.retry:
            # On a shared machine one stall of a neighbour decides a p99: a latency
            # failure is tried once more, and the rate passes if the second try does.
            show(t)
            again = run_trial(rm, rate, scale.trial_s, scale.max_events)
            again.figures["retried"] = dataclasses.asdict(t)
            t = again
        show(t)
        return t

    def show(t: Trial) -> None:
        f = t.figures
        rate = t.rate
        progress(
            f"  {rm.server.kind:>5} {rm.clients:>5} clients {rate:>9.1f} ev/s: "
            + (
                f"{f.get('deliveries_per_s', 0):>9.0f} deliv/s, recv p99 "
                f"{(f.get('delivery_ms') or {}).get('p99') or 0:.1f} ms, server CPU "
                f"{f.get('server_cpu', 0):.0%}, generator CPU {f.get('loadgen_cpu', 0):.0%}"
                + (f", commits {f['commit_mean_ms']:.1f} ms " if "commit_mean_ms" in f else " ")
            )
            + ("ok" if t.ok else f"FAIL {t.why}")
        )

    # Warm-up, not counted: connections, JIT and caches settle before the first trial.
    run_trial(rm, start, min(1.0, scale.trial_s), scale.max_events)
    cap = find_capacity(
        trial,
        start=start,
        max_rate=max_rate,
        min_rate=start / 10,
        factor=2.5,
        bisect_steps=scale.bisect_steps,
        max_trials=scale.max_trials,
        budget_s=scale.budget_s,
    )
    best = cap.best.figures if cap.best else {}
    row = {
        "server": rm.server.kind,
        "clients": rm.clients,
        "events_per_s": cap.rate,
        "deliveries_per_s": best.get("deliveries_per_s"),
        "ack_p50_ms": (best.get("ack_ms") or {}).get("p50"),
        "ack_p99_ms": (best.get("ack_ms") or {}).get("p99"),
        "recv_p99_ms": (best.get("delivery_ms") or {}).get("p99"),
        "bound": bound_of(cap) if cap.best else f"none passed ({cap.stopped})",
        "stopped": cap.stopped,
        "trials": [dataclasses.asdict(t) for t in cap.trials],
    }
    return cap, row


def overload(
    rm: Room, capacity: float, scale: Scale, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Today's behaviour at 1.5× and 3× ``capacity`` for ``scale.overload_s``, then recovery."""
    out = []
    for factor in (1.5, 3.0):
        rate = capacity * factor
        rss0 = rss_kib(rm.server.pid)
        progress(f"  overload {factor:g}x: {rate:.0f} ev/s for {scale.overload_s:g} s")
        # Receivers fall behind above capacity: give them time to catch up before
        # counting, so "lost" means never delivered, not late.
        t = run_trial(rm, rate, scale.overload_s, scale.max_events * 4, settle_s=30)
        rss1 = rss_kib(rm.server.pid)
        # Straight after: half the capacity, to see how soon latency is back.
        after = run_trial(rm, capacity * 0.5, scale.recovery_s, scale.max_events)
        f, a = t.figures, after.figures
        out.append(
            {
                "factor": factor,
                "offered_per_s": rate,
                "accepted_per_s": f.get("accepted_per_s"),
                "accepted_of_capacity": (f.get("accepted_per_s") or 0) / capacity,
                "ack_p50_ms": (f.get("ack_ms") or {}).get("p50"),
                "ack_p99_ms": (f.get("ack_ms") or {}).get("p99"),
                "recv_p99_ms": (f.get("delivery_ms") or {}).get("p99"),
                "errors": f.get("errors"),
                "last_error": f.get("last_error"),
                "unacked": (f.get("sent") or 0) - (f.get("acked") or 0),
                "lost_deliveries": (f.get("expected_deliveries") or 0) - (f.get("delivered") or 0),
                "disconnected": f.get("disconnected"),
                "rss_growth_mib": (rss1 - rss0) / 1024,
                "receivers_caught_up_s": f.get("settle_s"),
                "after_recv_p99_ms": (a.get("delivery_ms") or {}).get("p99"),
                "after_ack_p99_ms": (a.get("ack_ms") or {}).get("p99"),
                "after_ok": after.ok,
                "why": t.why,
            }
        )
    return out


def measure(
    servers: list[str],
    scale: Scale,
    progress: Callable[[str], None],
    overload_clients: int | None,
    pad: int = 120,
) -> dict[str, Any]:
    modules, why = node_modules()
    if modules is None:
        raise RuntimeError(why)
    fd_limit = raise_fd_limit()
    pin_server, pin_load = pinning()
    rows: list[dict[str, Any]] = []
    overloads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-sbs-") as tmp:
        work = Path(tmp)
        for kind in servers:
            progress(f"side by side: starting {LABELS[kind]}")
            server = start_server(kind, work, modules, pin_server)
            try:
                for clients in scale.clients:
                    with room(server, clients, modules, pin_load, pad) as rm:
                        cap, row = capacity_at(rm, scale, progress)
                        rows.append(row)
                        if kind == "ours" and clients == overload_clients and cap.rate:
                            overloads = overload(rm, cap.rate, scale, progress)
            finally:
                stop_process(server.proc)
    return {
        "rows": rows,
        "overload": overloads,
        "overload_clients": overload_clients,
        "fd_limit": fd_limit,
        "pinned": bool(pin_server),
        "trial_s": scale.trial_s,
        "overload_s": scale.overload_s,
        "p99_limit_ms": P99_LIMIT_MS,
    }


def tables(r: dict[str, Any]) -> list[Table]:
    by = {(row["server"], row["clients"]): row for row in r["rows"]}
    clients = sorted({row["clients"] for row in r["rows"]})
    servers = [s for s in SERVERS if any(row["server"] == s for row in r["rows"])]

    def deliveries(server: str, n: int) -> float | None:
        row = by.get((server, n))
        return None if row is None else row["deliveries_per_s"]

    def ratio(a: float | None, b: float | None) -> str:
        if a is None:
            return "–"
        if b is None:
            return "∞ (other: none)" if a else "–"
        return f"{a / b:.2f}×"

    side = Table(
        "highest sustained deliveries/s with receive p99 ≤ 50 ms and nothing lost",
        ["clients", *(LABELS[s] for s in servers)]
        + (["ours / Node", "ours / stock"] if "ours" in servers else []),
        [],
        [
            f"{EMITTERS} emitters, the other clients receive; one room; ~{260}-byte signed events; "
            f"trials of {r['trial_s']:g} s, climb ×2.5 then bisect (bounded), nearest-rank p99; "
            "a trial failing on p99 alone is tried once more (the machine is shared)",
            "server pinned to core 0, load generator (two Node processes) to core 1"
            if r["pinned"]
            else "not pinned (fewer than two cores or no taskset)",
            "Node's relay figures are lower bounds where the load generator was the bound",
        ],
    )
    for n in clients:
        cells: list[Any] = [n]
        for s in servers:
            row = by.get((s, n))
            if row is None or row["deliveries_per_s"] is None:
                cells.append("none")
            else:
                lower = "≥ " if row["bound"] == "load generator" else ""
                cells.append(f"{lower}{row['deliveries_per_s']:,.0f}")
        if "ours" in servers:
            ours = deliveries("ours", n)
            cells += [ratio(ours, deliveries("node", n)), ratio(ours, deliveries("stock", n))]
        side.rows.append(cells)
    detail = Table(
        "at that rate: events/s, ack and receive latency, and the bound",
        [
            "server",
            "clients",
            "events/s",
            "deliveries/s",
            "ack p50 ms",
            "ack p99 ms",
            "recv p99 ms",
            "bound (what failed above it)",
        ],
        [
            [
                LABELS[row["server"]],
                row["clients"],
                row["events_per_s"],
                row["deliveries_per_s"],
                row["ack_p50_ms"],
                row["ack_p99_ms"],
                row["recv_p99_ms"],
                row["bound"],
            ]
            for row in r["rows"]
        ],
    )
    out = [side, detail]
    if r["overload"]:
        out.append(
            Table(
                f"our gateway above capacity ({r['overload_clients']} clients, "
                f"{r['overload_s']:g} s each)",
                [
                    "offered",
                    "offered ev/s",
                    "accepted ev/s",
                    "of capacity",
                    "ack p50 ms",
                    "ack p99 ms",
                    "recv p99 ms",
                    "errors",
                    "unacked",
                    "lost deliveries",
                    "disconnected",
                    "RSS growth MiB",
                    "receivers caught up after s",
                    "after: recv p99 ms",
                    "after: ack p99 ms",
                ],
                [
                    [
                        f"{o['factor']:g}×",
                        o["offered_per_s"],
                        o["accepted_per_s"],
                        f"{o['accepted_of_capacity']:.0%}",
                        o["ack_p50_ms"],
                        o["ack_p99_ms"],
                        o["recv_p99_ms"],
                        o["errors"],
                        o["unacked"],
                        o["lost_deliveries"],
                        o["disconnected"],
                        o["rss_growth_mib"],
                        o["receivers_caught_up_s"],
                        o["after_recv_p99_ms"],
                        o["after_ack_p99_ms"],
                    ]
                    for o in r["overload"]
                ],
                [
                    '"after": a trial at half the capacity started right after the overload; '
                    "receivers are given up to 30 s to catch up before deliveries are counted",
                    "targets (issue 15): accept ≥ 90 % of capacity, ack p99 ≤ 100 ms, the excess "
                    "refused with Overloaded and retry_after, bounded memory, normal within 2 s",
                ],
            )
        )
    return out


def bench(smoke: bool, progress: Callable[[str], None]) -> Section:
    name = "Socket.IO side by side: Node relay, stock python-socketio relay, our gateway"
    modules, why = node_modules()
    if modules is None:
        return Section(name, skipped=why)
    # Above capacity is the overload benchmark's (bench_overload), not measured twice.
    r = measure(list(SERVERS), SMOKE if smoke else FULL, progress, overload_clients=None)
    return Section(name, tables(r), r)


def bench_overload(smoke: bool, progress: Callable[[str], None]) -> Section:
    """Our gateway alone: its capacity at 100 clients (10 in smoke), then 1.5× and 3× that
    for 30 s each (issue 15, "Overload"), each followed by a recovery trial."""
    name = "Overload: our gateway at 1.5× and 3× its capacity"
    modules, why = node_modules()
    if modules is None:
        return Section(name, skipped=why)
    scale = SMOKE if smoke else dataclasses.replace(FULL, clients=[100], overload_s=30.0)
    r = measure(["ours"], scale, progress, overload_clients=scale.clients[0])
    if not r["overload"]:
        raise RuntimeError(f"no rate passed at {scale.clients[0]} clients: no capacity to exceed")
    # The side-by-side table would have one column here: the capacity row and the overload.
    return Section(name, tables(r)[1:], r)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--clients", default="")
    ap.add_argument("--trial-seconds", type=float, default=0.0)
    ap.add_argument("--overload-clients", type=int, default=100, help="0: no overload phase")
    ap.add_argument("--pad", type=int, default=120, help="payload padding (bytes)")
    args = ap.parse_args()
    scale = SMOKE if args.smoke else FULL
    if args.clients:
        scale = dataclasses.replace(scale, clients=[int(c) for c in args.clients.split(",")])
    if args.trial_seconds:
        scale = dataclasses.replace(scale, trial_s=args.trial_seconds)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    r = measure(
        args.servers.split(","), scale, progress, args.overload_clients or None, pad=args.pad
    )
    import report

    for table in tables(r):
        print(f"\n{table.title}\n")
        print(report.markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
