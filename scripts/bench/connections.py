"""Benchmark: many idle WebSocket connections on one gateway process (issue 15, "Connections").

Starts one gateway (``anchorline gateway run``, as ``gateway_events.py`` does), opens
``--connections`` Socket.IO connections over WebSocket from ``--workers`` client
processes (each a plain asyncio loop of minimal raw clients, ``rawsocket.py``), joins
them all to one channel, and reports:

- the gateway's RSS growth per idle, joined connection (target ≤ 30 KiB);
- the time to connect and join them all;
- delivery of ``--events`` events (one every 100 ms) to all of them:
  deliveries/s and emit → receipt p50/p99 (one machine, one clock; nearest rank,
  ``stats.py``).

File descriptors: the soft ``RLIMIT_NOFILE`` of this process is raised to its
hard limit before anything starts; the gateway and the workers inherit it
(raise the hard limit, e.g. ``ulimit -Hn`` or ``LimitNOFILE=`` in a unit, for
more than it allows). Bounded: every phase has a deadline.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/connections.py [--connections 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from gateway_events import (  # noqa: E402
    free_port,
    login,
    raise_fd_limit,
    rss_kib,
    start_gateway,
    stop_process,
    wait_healthy,
)
from rawsocket import RawSocketIO  # noqa: E402
from report import Section, Table, markdown_table  # noqa: E402
from stats import latency_summary  # noqa: E402

from gateway.client import MemberClient  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402

CHANNEL = "idle"
OVERLOADED = "AL1607"


async def _worker(url: str, token: str, count: int, pipe: Pipe, deadline_s: float) -> None:
    started = time.perf_counter()
    clients: list[RawSocketIO] = []
    for first in range(0, count, 100):  # in groups, so the accept queue is not flooded
        group = await asyncio.gather(
            *(
                RawSocketIO.connect(url, token, rcvbuf=65536)
                for _ in range(first, min(count, first + 100))
            )
        )
        for client in group:
            client.emit("join", {"channel": CHANNEL}, ack_id=1)
        await asyncio.gather(*(c.until_ack(1, timeout=deadline_s) for c in group))
        clients.extend(group)
    pipe.send({"connected": len(clients), "seconds": time.perf_counter() - started})
    receipts: list[tuple[str, float]] = []

    async def read(client: RawSocketIO) -> None:
        while True:
            kind, body = await client.packet(timeout=deadline_s)
            if kind == "event" and body[0] == "event":
                receipts.append((body[1]["id"], time.time()))

    readers = [asyncio.ensure_future(read(c)) for c in clients]
    # The parent says when the events are sent (or the deadline passes).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.poll, deadline_s)
    await asyncio.sleep(1.0)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    pipe.send({"receipts": receipts})
    for client in clients:
        client.close()


def _run_worker(url: str, token: str, count: int, pipe: Pipe, deadline_s: float) -> None:
    asyncio.run(_worker(url, token, count, pipe, deadline_s))


async def _emit(url: str, msp: Path, events: int) -> tuple[dict[str, float], int]:
    """Send ``events`` events, one every 100 ms: when each was sent, and how many
    emits admission refused (each retried after its ``retry_after``)."""
    emitter = MemberClient.from_msp(url, msp, "Org1MSP")
    sent: dict[str, float] = {}
    retries = 0
    try:
        await emitter.connect()
        await emitter.join(CHANNEL)
        for i in range(events):
            event_id = f"conn-{i}"
            for _ in range(20):
                sent[event_id] = time.time()
                ack = await emitter.emit(CHANNEL, "tick", {"n": i}, event_id=event_id)
                if ack.ok or (ack.error or {}).get("code") != OVERLOADED:
                    break
                # A fan-out to every connection keeps the loop busy: admission says
                # when to come back, and a well-behaved client does.
                retries += 1
                await asyncio.sleep(int((ack.error or {}).get("retry_after", 100)) / 1000)
            if not ack.ok:
                raise RuntimeError(f"event {event_id} refused: {ack.error}")
            await asyncio.sleep(0.1)
    finally:
        await emitter.close()
    return sent, retries


def measure(
    connections: int,
    workers: int,
    events: int,
    deadline_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Run the benchmark once; its figures (see the module docstring)."""
    soft = raise_fd_limit()
    need = connections + 200
    if soft < need:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit {soft} < {need}: raise it (ulimit -Hn)")
    workers = max(1, min(workers, connections))
    figures: dict[str, Any] = {
        "connections": connections,
        "workers": workers,
        "events": events,
        "fd_limit": soft,
    }
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-conns-") as tmp:
        home = Path(tmp)
        # The gateway trusts the built-in CA of its home (ANCHORLINE_HOME/embedded/ca).
        ca = EmbeddedCA(home / "embedded" / "ca")
        emitter_dir = ca.enroll("Org1", "emitter", "member")
        receiver_dir = ca.enroll("Org2", "receiver", "member")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_gateway(home, port, [])
        pool: list[tuple[Any, Pipe]] = []
        try:
            wait_healthy(f"{url}/healthz", proc, home / "server.log")
            token = asyncio.run(login(url, receiver_dir, "Org2MSP"))
            time.sleep(0.5)
            rss0 = rss_kib(proc.pid)
            progress(f"connections: opening {connections} from {workers} worker process(es)")
            started = time.perf_counter()
            ctx = mp.get_context("spawn")
            share = [connections // workers] * workers
            share[0] += connections - sum(share)
            for count in share:
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_run_worker, args=(url, token, count, child, deadline_s))
                p.start()
                pool.append((p, parent))
            connected = 0
            for i, (_, pipe) in enumerate(pool, 1):
                if not pipe.poll(deadline_s):
                    raise RuntimeError(f"a worker did not connect within {deadline_s:g} s")
                connected += pipe.recv()["connected"]
                progress(f"  worker {i}/{workers} joined; {connected} connections so far")
            connect_s = time.perf_counter() - started
            time.sleep(1.0)
            rss1 = rss_kib(proc.pid)
            figures |= {
                "connected": connected,
                "connect_s": connect_s,
                "connects_per_s": connected / connect_s,
                "rss_before_mib": rss0 / 1024,
                "rss_idle_mib": rss1 / 1024,
                "kib_per_idle_connection": (rss1 - rss0) / max(1, connected),
            }
            progress(
                f"  {connected} joined in {connect_s:.1f} s; "
                f"{figures['kib_per_idle_connection']:.1f} KiB per idle connection; "
                f"sending {events} events"
            )
            sent, retries = asyncio.run(_emit(url, emitter_dir, events))
            for _, pipe in pool:
                pipe.send("done")
            latencies: list[float] = []
            last = 0.0
            for _, pipe in pool:
                if not pipe.poll(deadline_s):
                    raise RuntimeError("a worker did not report its receipts")
                for event_id, at in pipe.recv()["receipts"]:
                    if event_id in sent:
                        latencies.append((at - sent[event_id]) * 1000)
                        last = max(last, at)
            first = min(sent.values())
            figures |= {
                "deliveries": len(latencies),
                "expected_deliveries": connected * len(sent),
                "deliveries_per_s": len(latencies) / max(1e-9, last - first),
                "receipt_ms": latency_summary(latencies),
                "overloaded_retries": retries,
                "rss_after_mib": rss_kib(proc.pid) / 1024,
            }
        finally:
            for p, _ in pool:
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            stop_process(proc)
    return figures


def table(f: dict[str, Any]) -> Table:
    r = f["receipt_ms"]
    return Table(
        "idle WebSocket connections on one gateway process: memory, connecting, delivery to all",
        [
            "connections",
            "KiB / idle connection",
            "connect + join s",
            "connections/s",
            "events",
            "deliveries",
            "deliveries/s",
            "receipt p50 ms",
            "receipt p99 ms",
            "gateway RSS MiB (idle)",
        ],
        [
            [
                f["connected"],
                f["kib_per_idle_connection"],
                f["connect_s"],
                f["connects_per_s"],
                f["events"],
                f"{f['deliveries']}/{f['expected_deliveries']}",
                f["deliveries_per_s"],
                r["p50"],
                r["p99"],
                f["rss_idle_mib"],
            ]
        ],
        [
            "gateway RSS growth from before the first connection to all of them joined, divided "
            "by their number (target ≤ 30 KiB, issue 15)",
            f"{f['workers']} client process(es) of raw WebSocket clients on the same machine; "
            f"fd limit raised to {f['fd_limit']} (the hard limit); one event every 100 ms; "
            f"{f['overloaded_retries']} emits refused with Overloaded and retried",
            "bound: the gateway's one event loop writing to every connection (deliveries), "
            "and the client processes sharing its cores (connect time)",
        ],
    )


def bench(smoke: bool, progress: Callable[[str], None]) -> Section:
    # Full: the 10,000 connections; smoke: enough to see each phase work.
    size = (100, 1, 3, 60.0) if smoke else (10_000, 4, 20, 300.0)
    f = measure(*size, progress)
    return Section("Idle connections on one gateway process", [table(f)], f)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds per phase")
    args = ap.parse_args()

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    f = measure(args.connections, args.workers, min(args.events, 1000), args.deadline, progress)
    print(markdown_table(table(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
