"""Where the fast path's time goes: CPU per acknowledged event, in one process, at capacity.

Feeds pre-signed Socket.IO event packets to the hub exactly as the adapter
does (parse → verify → group commit → ack → fan-out) as fast as the process
goes, every connection writing to a real local socket (its other end drained
outside the measurement), and reports CPU microseconds per acknowledged event
(all threads) and per delivery. Then each stage alone, on the same events and
in the same process: signature verification, canonical JSON, the rest of
parsing, the store's group commits (the pipeline on its own), the fan-out's
encoding (once per event) and its socket writes (one per recipient per
commit), and the acks' encoding and writes; what the stages do not explain is
the event loop, callbacks and bookkeeping. Not included: the WebSocket frame
decoding and Engine.IO reading that happen before the hub, which the
loopback benchmark (gateway_events.py) does include. Useful on a busy
machine, where loopback figures mostly measure the neighbours.

    .venv/bin/python scripts/bench/gateway_inprocess.py [--events 20000] [--receivers 10]
        [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import pstats
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from report import Section, Table  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.config import Settings, load_settings  # noqa: E402
from gateway.events.canonical import canonical_json  # noqa: E402
from gateway.events.metrics import GatewayMetrics  # noqa: E402
from gateway.events.model import parse_event  # noqa: E402
from gateway.events.pipeline import EventPipeline  # noqa: E402
from gateway.events.signed import sign_event  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.identity.signing import EcdsaSigner, verify  # noqa: E402
from gateway.store.engine import create_engine, migrate  # noqa: E402
from gateway.store.events import EventRepository, NewEvent  # noqa: E402
from gateway.stream.frames import (  # noqa: E402
    Outgoing,
    ack_packet,
    event_packet_raw,
    parse_event_packet,
)
from gateway.stream.hub import Connection, Hub  # noqa: E402

CHANNEL = "bench"


class Transport(Protocol):
    """What a connection writes to: the part of an asyncio transport the hub uses."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class SocketSink:
    """A transport writing to a real local socket, as asyncio's does when its buffer is empty.

    One ``send`` system call per write; the other end is read by :meth:`drain`,
    whose CPU the caller leaves out of the measurement.
    """

    def __init__(self) -> None:
        self.out, self.peer = socket.socketpair()
        for s in (self.out, self.peer):
            s.setblocking(False)
        self.out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        view = memoryview(data)
        while view:
            try:
                view = view[self.out.send(view) :]
            except BlockingIOError:
                self.drain()

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.peer.recv(1 << 20):
                pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.out.close()
        self.peer.close()


def drain_all(sinks: list[SocketSink]) -> float:
    """Read every sink's other end; return the main thread's CPU seconds it took."""
    t = time.thread_time()
    for sink in sinks:
        sink.drain()
    return time.thread_time() - t


def bench_settings(home: Path, database_url: str, sqlite_synchronous: str) -> Settings:
    """A gateway in ``home`` with the fast path only (this process's environment ignored)."""
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(
            base.gateway,
            database_url=database_url,
            sqlite_synchronous=sqlite_synchronous,
            # The fast path's own cost: no emit budget or admission refuses the one
            # emitter this benchmark drives as fast as it can.
            emit_identity_per_s=0.0,
            emit_connection_per_s=0.0,
            admission_max_queue_wait_ms=0,
            admission_max_loop_lag_ms=0,
            # One process's own CPU per event: signatures checked inline, as a
            # one-core machine does (the worker process is overload.py's to measure).
            verify_offload="off",
        ),
        anchoring=dataclasses.replace(base.anchoring, enabled=False),
    )


def signed_packets(
    key: ec.EllipticCurvePrivateKey, n: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """``n`` events in channel :data:`CHANNEL` signed with ``key``, and their Socket.IO
    EVENT packets (ack ids 0..n-1)."""
    signer = EcdsaSigner(key)
    bodies = [
        sign_event(
            signer,
            channel=CHANNEL,
            type="bid",
            payload={"amount": i, "note": "x" * 120},
            event_id=f"e{i}",
            client_ts=1,
        )
        for i in range(n)
    ]
    packets = ["2" + str(i) + orjson.dumps(["event", b]).decode() for i, b in enumerate(bodies)]
    return bodies, packets


def _no_fallback(conn: Connection, out: Outgoing) -> int:
    raise AssertionError("every connection here writes straight to its transport")


async def joined_connections(
    hub: Hub, key: ec.EllipticCurvePrivateKey, transports: Sequence[Transport]
) -> list[Connection]:
    """One connection per transport, ids ``c0``, ``c1``…, registered with ``hub`` and
    joined to :data:`CHANNEL`, each an Org1 member with ``key``'s public key (so any of
    them may send :func:`signed_packets`); their writes go straight to the transport."""
    conns = []
    for i, transport in enumerate(transports):
        principal = Principal(f"s{i}", f"fp{i}", "Org1MSP", "member", 2**62, key.public_key())
        conn = Connection(f"c{i}", f"c{i}", principal, "127.0.0.1", _no_fallback)
        conn.transport = transport  # type: ignore[assignment]
        hub.connections[conn.eio_sid] = conn
        await hub._join(conn, CHANNEL, None)
        conns.append(conn)
    return conns


async def feed(hub: Hub, packets: list[str], every_64: Callable[[], object] = lambda: None) -> None:
    """Hand ``packets`` to the hub as sent by connection ``c0``, as the adapter would,
    yielding to the loop (then calling ``every_64``) every 64 packets, as socket reads do."""
    for i, data in enumerate(packets):
        incoming = parse_event_packet(data)
        assert incoming is not None
        hub.dispatch("c0", incoming, time.perf_counter())
        if i % 64 == 63:
            await asyncio.sleep(0)  # let the writer commit
            every_64()


def cpu_us(fn: Callable[[], object], n: int) -> float:
    """CPU µs (all threads) per item of ``fn``, which handles ``n`` items."""
    t = time.process_time()
    fn()
    return (time.process_time() - t) / n * 1e6


async def stage_costs(
    key: ec.EllipticCurvePrivateKey,
    bodies: list[dict[str, Any]],
    packets: list[str],
    receivers: int,
    per_commit: float,
    sync: str,
) -> dict[str, float]:
    """Each stage of the fast path alone, CPU µs per event, on the same events."""
    n = len(bodies)
    public = key.public_key()
    parsed = [parse_event(parse_event_packet(p).args[0], 1 << 20) for p in packets]  # type: ignore[union-attr]
    out: dict[str, float] = {}
    out["signature verification"] = cpu_us(
        lambda: [verify(public, e.canonical, e.signature, require_low_s=False) for e in parsed], n
    )
    unsigned = [{k: v for k, v in b.items() if k != "signature"} for b in bodies]
    out["canonical JSON"] = cpu_us(lambda: [canonical_json(b) for b in unsigned], n)
    parse_all = cpu_us(
        lambda: [parse_event(parse_event_packet(p).args[0], 1 << 20) for p in packets],
        n,  # type: ignore[union-attr]
    )
    out["packet parsing and validation (without canonical JSON)"] = max(
        0.0, parse_all - out["canonical JSON"]
    )
    stored, out["store: group commits (pipeline alone)"] = await store_only(parsed, sync)
    encoded: list[Any] = []
    out["fan-out: encoding (once per event)"] = cpu_us(
        lambda: encoded.extend(
            event_packet_raw("event", orjson.dumps(e.to_wire())) for e in stored
        ),
        n,
    )
    sinks = [SocketSink() for _ in range(receivers)]
    batch = max(1, round(per_commit))

    def fan_out() -> float:
        drained = 0.0
        for start in range(0, n, batch):
            joined = b"".join(p.frame for p in encoded[start : start + batch])
            for sink in sinks:
                sink.write(joined)
            drained += drain_all(sinks)
        return drained

    t = time.process_time()
    drained = fan_out()
    out["fan-out: socket writes (one per recipient per commit)"] = (
        (time.process_time() - t - drained) / n * 1e6
    )
    ack_sink = SocketSink()

    def acks() -> float:
        drained = 0.0
        for start in range(0, n, batch):
            frames = [
                ack_packet(i, {"id": f"e{i}", "seq": i + 1, "status": "pending"}).frame
                for i in range(start, min(n, start + batch))
            ]
            ack_sink.write(b"".join(frames))
            drained += drain_all([ack_sink])
        return drained

    t = time.process_time()
    drained = acks()
    out["acks: encoding and writes"] = (time.process_time() - t - drained) / n * 1e6
    for sink in [*sinks, ack_sink]:
        sink.close()
    return out


async def store_only(parsed: list[Any], sync: str) -> tuple[list[Any], float]:
    """The pipeline alone on ``parsed``: the stored events and CPU µs per event (all threads)."""
    work = Path(tempfile.mkdtemp(prefix="anchorline-inproc-store-"))
    settings = bench_settings(work, f"sqlite:///{work / 'e.db'}", sync)
    engine = create_engine(settings.gateway.database_url, sync)
    await migrate(engine)
    pipeline = EventPipeline(
        EventRepository(engine),
        max_batch=settings.gateway.commit_max_batch,
        queue_limit=10**7,
        metrics=GatewayMetrics(),
    )
    await pipeline.start()
    stored: list[Any] = []

    def done(result: Any) -> None:
        stored.append(result.stored)

    t = time.process_time()
    for i, event in enumerate(parsed):
        pipeline.submit(NewEvent(event, "fp0", "Org1MSP", 0), done)
        if i % 64 == 63:
            await asyncio.sleep(0)
    await pipeline.drain()
    cpu = time.process_time() - t
    await pipeline.stop()
    await engine.dispose()
    assert len(stored) == len(parsed)
    return stored, cpu / len(parsed) * 1e6


async def run(events: int, receivers: int, sync: str, profile: bool) -> dict[str, float]:
    """Print and return CPU µs per event and per delivery, events/s (wall)."""
    work = Path(tempfile.mkdtemp(prefix="anchorline-inproc-"))
    settings = bench_settings(work, f"sqlite:///{work / 'e.db'}", sync)
    app = create_app(settings, verifier=EmbeddedCA(work / "ca").trust_store())
    from gateway.context import CONTEXT

    ctx = app[CONTEXT]
    await migrate(ctx.engine)
    await ctx.pipeline.start()
    key = ec.generate_private_key(ec.SECP256R1())
    sinks = [SocketSink() for _ in range(receivers + 1)]
    await joined_connections(ctx.hub, key, sinks)
    bodies, packets = signed_packets(key, events)
    profiler = cProfile.Profile() if profile else None
    drained = 0.0

    def drain() -> None:
        nonlocal drained
        drained += drain_all(sinks)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    await feed(ctx.hub, packets, drain)
    await ctx.pipeline.drain()
    await asyncio.sleep(0)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0 - drained, time.perf_counter() - wall0
    drain_all(sinks)
    assert ctx.metrics.events_accepted == events
    commits = ctx.metrics.commits
    per_commit_ms = ctx.metrics.commit_latency.total / max(1, commits) * 1000
    print(
        f"{events} events, {receivers} receivers, synchronous={sync}: "
        f"{events / wall:,.0f} events/s wall, {cpu / events * 1e6:.0f} µs CPU per event, "
        f"{cpu / (events * receivers) * 1e6:.1f} µs CPU per delivery (all threads), "
        f"{commits} commits, {per_commit_ms:.1f} ms each"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    await ctx.pipeline.stop()
    await ctx.engine.dispose()
    for sink in sinks:
        sink.close()
    stages = await stage_costs(key, bodies, packets, receivers, events / max(1, commits), sync)
    explained = sum(stages.values())
    stages["event loop, callbacks, bookkeeping (the rest)"] = cpu / events * 1e6 - explained
    return {
        "stages_us_per_event": stages,  # type: ignore[dict-item]
        "events": events,
        "receivers": receivers,
        "events_per_s_wall": events / wall,
        "cpu_us_per_event": cpu / events * 1e6,
        "cpu_us_per_delivery": cpu / (events * receivers) * 1e6,
        "commits": commits,
        "commit_ms": per_commit_ms,
    }


def bench(smoke: bool, progress: Callable[[str], None]) -> Section:
    sys.setswitchinterval(0.0005)
    rows = []
    runs = []
    for receivers in (3,) if smoke else (10, 100):
        events = 300 if smoke else (20000 if receivers <= 10 else 6000)
        progress(f"fast path in-process: {events} events to {receivers} receivers, then each stage")
        r = asyncio.run(run(events, receivers, "FULL", False))
        runs.append(r)
        rows.append(
            [
                receivers,
                events,
                r["events_per_s_wall"],
                r["cpu_us_per_event"],
                r["cpu_us_per_delivery"],
                r["commits"],
                r["commit_ms"],
            ]
        )
    total = Table(
        "fast path in one process, at capacity (parse → verify → commit → ack → fan-out)",
        [
            "receivers",
            "events",
            "events/s (wall)",
            "CPU µs / acked event",
            "CPU µs / delivery",
            "commits",
            "ms / commit",
        ],
        rows,
        [
            "SQLite WAL, synchronous=FULL; CPU of all threads; every connection writes to a "
            "real local socket; bound: this process's CPU and the commits' fsyncs",
        ],
    )
    stage_names = list(runs[0]["stages_us_per_event"])
    split = Table(
        "where the time goes: CPU µs per acknowledged event, each stage measured alone",
        ["stage", *(f"{r['receivers']} receivers: µs (share)" for r in runs)],
        [
            [name]
            + [
                f"{r['stages_us_per_event'][name]:.1f} "
                f"({r['stages_us_per_event'][name] / r['cpu_us_per_event']:.0%})"
                for r in runs
            ]
            for name in stage_names
        ],
        [
            "each stage run alone over the same events in the same process; the rest is the "
            "total minus the stages (event loop, callbacks, bookkeeping; negative when the stages "
            "alone cost more than inside the pipeline, e.g. a commit's fsync overlapping)",
            "not included: WebSocket frame decoding and Engine.IO reading before the hub",
        ],
    )
    return Section("Gateway fast path: where the time goes", [total, split], {"runs": runs})


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--receivers", type=int, default=10)
    ap.add_argument("--synchronous", default="FULL")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--switch-interval", type=float, default=0.0005, help="as `anchorline gateway run` sets"
    )
    args = ap.parse_args()
    sys.setswitchinterval(args.switch_interval)
    r = asyncio.run(run(args.events, args.receivers, args.synchronous, args.profile))
    for name, us in r["stages_us_per_event"].items():  # type: ignore[union-attr]
        print(f"  {name:<58} {us:8.1f} µs per event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
