"""In-process cost of the gateway's fast path, without sockets or a load generator.

Feeds pre-signed Socket.IO event packets to the hub exactly as the adapter
does (parse → verify → group commit → ack → fan-out to N recording
transports) and reports CPU microseconds per event and per delivery, then a
cProfile of the same run. Useful on a busy machine, where loopback figures
mostly measure the neighbours.

    .venv/bin/python scripts/bench/gateway_inprocess.py [--events 20000] [--receivers 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import dataclasses
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from report import Section, Table  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.config import Settings, load_settings  # noqa: E402
from gateway.events.canonical import canonical_json  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.store.engine import migrate  # noqa: E402
from gateway.stream.frames import parse_event_packet  # noqa: E402
from gateway.stream.hub import Connection  # noqa: E402


class Sink:
    """A transport that accepts everything (what a fast reader looks like)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def bench_settings(home: Path, database_url: str, sqlite_synchronous: str) -> Settings:
    """A gateway in ``home`` with the fast path only (this process's environment ignored)."""
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    return dataclasses.replace(
        base,
        gateway=dataclasses.replace(
            base.gateway, database_url=database_url, sqlite_synchronous=sqlite_synchronous
        ),
        anchoring=dataclasses.replace(base.anchoring, enabled=False),
    )


def _fallback(conn: Connection, out: object) -> int:
    raise AssertionError("unexpected")


async def run(events: int, receivers: int, sync: str, profile: bool) -> dict[str, float]:
    """Print and return CPU µs per event and per delivery, events/s (wall)."""
    work = Path(tempfile.mkdtemp(prefix="anchorline-inproc-"))
    settings = bench_settings(work, f"sqlite:///{work / 'e.db'}", sync)
    app = create_app(settings, verifier=EmbeddedCA(work / "ca").trust_store())
    from gateway.web.state import CONTEXT

    ctx = app[CONTEXT]
    await migrate(ctx.engine)
    await ctx.pipeline.start()
    hub = ctx.hub
    key = ec.generate_private_key(ec.SECP256R1())
    conns = []
    for i in range(receivers + 1):
        principal = Principal(f"s{i}", f"fp{i}", "Org1MSP", "member", 2**62, key.public_key())
        conn = Connection(f"c{i}", f"c{i}", principal, "127.0.0.1", _fallback)
        conn.transport = Sink()  # type: ignore[assignment]
        hub.connections[conn.eio_sid] = conn
        await hub._join(conn, "bench", None)
        conns.append(conn)
    packets = []
    for i in range(events):
        body = {
            "id": f"e{i}",
            "channel": "bench",
            "type": "bid",
            "payload": {"amount": i, "note": "x" * 120},
            "client_ts": 1,
        }
        sig = base64.b64encode(key.sign(canonical_json(body), ec.ECDSA(hashes.SHA256())))
        packets.append(
            "2" + str(i) + orjson.dumps(["event", {**body, "signature": sig.decode()}]).decode()
        )
    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for i, data in enumerate(packets):
        incoming = parse_event_packet(data)
        assert incoming is not None
        hub.dispatch("c0", incoming, time.perf_counter())
        if i % 64 == 63:
            await asyncio.sleep(0)  # let the writer commit, as socket reads would
    await ctx.pipeline.drain()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
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
    return {
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
    for receivers in (10, 100) if not smoke else (3,):
        events = 300 if smoke else 20000 // (1 if receivers <= 10 else 4)
        progress(f"fast path in-process: {events} events to {receivers} receivers")
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
            ]
        )
    table = Table(
        "fast path in one process, no sockets (parse → verify → commit → ack → fan-out)",
        [
            "receivers",
            "events",
            "events/s (wall)",
            "CPU µs / event",
            "CPU µs / delivery",
            "commits",
        ],
        rows,
        ["SQLite WAL, synchronous=FULL; CPU of all threads; bound: this process's CPU"],
    )
    return Section("Gateway fast path in-process", [table], {"runs": runs})


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
    asyncio.run(run(args.events, args.receivers, args.synchronous, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
