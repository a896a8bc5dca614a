"""Benchmark: many idle WebSocket connections on one gateway process (issue 15, "Connections").

Starts one gateway (as ``gateway_events.py`` does), opens ``--connections``
Socket.IO connections over WebSocket from ``--workers`` client processes
(each a plain asyncio loop with minimal raw clients, ``tests/load/rawsocket.py``),
joins them all to one channel, and reports:

- the gateway's RSS growth per idle, joined connection (target ≤ 30 KiB);
- the time to connect and join them all;
- delivery of ``--events`` events (one every 100 ms) to all of them:
  deliveries/s and emit → receipt p50/p99 (one machine, one clock).

File descriptors: the soft ``RLIMIT_NOFILE`` of this process is raised to its
hard limit with ``resource.setrlimit`` before anything starts; the gateway
and the workers inherit it (raise the hard limit, e.g. ``ulimit -Hn`` or
``LimitNOFILE=`` in a unit, for more than it allows). Bounded: every phase
has a deadline.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/connections.py [--connections 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "bench"))
sys.path.insert(0, str(REPO))

from gateway_events import free_port, login, start_gateway, stop_gateway  # noqa: E402

from gateway.client import MemberClient  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from tests.load.rawsocket import RawSocketIO  # noqa: E402

CHANNEL = "idle"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _emit(url: str, msp: Path, events: int) -> dict[str, float]:
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
                if ack.ok or (ack.error or {}).get("code") != "AL1607":
                    break
                # A fan-out to every connection keeps the loop busy: admission says
                # when to come back, and a well-behaved client does.
                retries += 1
                await asyncio.sleep(int((ack.error or {}).get("retry_after", 100)) / 1000)
            assert ack.ok, ack.error
            await asyncio.sleep(0.1)
    finally:
        await emitter.close()
    print(f"{retries} emits refused with Overloaded and retried after their retry_after")
    return sent


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds per phase")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = args.connections + 200
    if hard < need:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn)")
    print(f"RLIMIT_NOFILE raised from {soft} to {hard} (inherited by gateway and workers)")
    work = Path(tempfile.mkdtemp(prefix="anchorline-conns-"))
    ca = EmbeddedCA(work / "embedded" / "ca")
    emitter_dir = ca.enroll("Org1", "emitter", "member")
    receiver_dir = ca.enroll("Org2", "receiver", "member")
    port = free_port()
    proc = start_gateway(work, port, None, f"sqlite:///{work / 'events.db'}", False)
    url = f"http://127.0.0.1:{port}"
    workers: list[tuple[Any, Pipe]] = []
    try:
        token = asyncio.run(login(url, receiver_dir, "Org2MSP"))
        time.sleep(0.5)
        rss0 = _rss_kib(proc.pid)
        started = time.perf_counter()
        ctx = mp.get_context("spawn")
        share = [args.connections // args.workers] * args.workers
        share[0] += args.connections - sum(share)
        for count in share:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_run_worker, args=(url, token, count, child, args.deadline))
            p.start()
            workers.append((p, parent))
        connected = 0
        for _, pipe in workers:
            if not pipe.poll(args.deadline):
                raise SystemExit("a worker did not connect in time")
            connected += pipe.recv()["connected"]
        connect_s = time.perf_counter() - started
        time.sleep(1.0)
        rss1 = _rss_kib(proc.pid)
        per_conn = (rss1 - rss0) / max(1, connected)
        print(
            f"{connected} connections joined in {connect_s:.1f} s "
            f"({connected / connect_s:,.0f}/s); gateway RSS {rss0 / 1024:.0f} → "
            f"{rss1 / 1024:.0f} MiB: {per_conn:.1f} KiB per idle connection",
            flush=True,
        )
        sent = asyncio.run(_emit(url, emitter_dir, args.events))
        for _, pipe in workers:
            pipe.send("done")
        latencies: list[float] = []
        last = 0.0
        for _, pipe in workers:
            if not pipe.poll(args.deadline):
                raise SystemExit("a worker did not report its receipts")
            for event_id, at in pipe.recv()["receipts"]:
                if event_id in sent:
                    latencies.append((at - sent[event_id]) * 1000)
                    last = max(last, at)
        first = min(sent.values())
        expected = connected * len(sent)
        p50, p99 = _pct(latencies, 0.5), _pct(latencies, 0.99)
        print(
            f"{len(latencies)}/{expected} deliveries of {len(sent)} events "
            f"({len(latencies) / max(1e-9, last - first):,.0f} deliveries/s over the run, "
            f"{len(latencies) / len(sent):,.0f} per event); receipt p50 "
            f"{p50 or 0:.1f} ms, p99 {p99 or 0:.1f} ms; "
            f"gateway RSS now {_rss_kib(proc.pid) / 1024:.0f} MiB"
        )
    finally:
        for p, _ in workers:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        stop_gateway(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
