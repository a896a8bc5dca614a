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
import pstats
import sys
import tempfile
import time
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gateway.app import create_app  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.events.canonical import canonical_json  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.store.engine import migrate  # noqa: E402
from gateway.stream.frames import parse_event_packet  # noqa: E402
from gateway.stream.hub import Connection  # noqa: E402
from tests.integration.gateway.support import make_settings  # noqa: E402


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


def _fallback(conn: Connection, out: object) -> int:
    raise AssertionError("unexpected")


async def run(events: int, receivers: int, sync: str, profile: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="anchorline-inproc-"))
    settings = make_settings(work, f"sqlite:///{work / 'e.db'}", sqlite_synchronous=sync)
    app = create_app(settings, verifier=EmbeddedCA(work / "ca").trust_store())
    from gateway.context import CONTEXT

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
