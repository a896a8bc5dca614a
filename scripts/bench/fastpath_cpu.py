"""Where the fast path's CPU goes, per acknowledged event (issue 15, "Where the time goes").

Runs the real hub, intake, pipeline and SQLite store in this process, with
``gateway_inprocess.py``'s settings, events and connections (pre-signed
Socket.IO packets fed to the hub as the adapter would, ``--receivers``
connections whose transports take every byte at once), with perf counters
around each stage:

- signature verification (``gateway.identity.signing.verify`` as the intake calls it);
- canonical JSON (RFC 8785, while the event is parsed);
- store commit (the SQLite writer's transaction, in its own thread: thread CPU);
- fan-out encoding (``StoredEvent.to_wire``, the event and ack packets);
- writes (``Connection.write``/``write_many``; to a socket add the ``send`` syscall,
  which the in-process transports do not make);
- the rest (packet parsing, dispatch, acks' bookkeeping, the event loop).

CPU is ``time.thread_time`` of the thread doing the stage. Prints µs per
acknowledged event per stage and each stage's share.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/fastpath_cpu.py [--events 20000] [--receivers 10]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from gateway_inprocess import bench_settings, feed, joined_connections, signed_packets  # noqa: E402

import gateway.events.intake as intake_module  # noqa: E402
import gateway.events.model as model_module  # noqa: E402
import gateway.store.events as store_module  # noqa: E402
import gateway.stream.hub as hub_module  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.context import CONTEXT  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.store.engine import migrate  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[stage] += time.thread_time() - t0

    return wrapper


def instrument() -> None:
    """Wrap each stage's function where the fast path looks it up."""
    intake_module.verify = _timed("signature verification", intake_module.verify)
    model_module.canonical_json = _timed("canonical JSON", model_module.canonical_json)
    writer = store_module._SqliteWriter
    writer._append = _timed("store commit", writer._append)  # type: ignore[method-assign]
    stored = model_module.StoredEvent
    stored.to_wire = _timed("fan-out encoding", stored.to_wire)  # type: ignore[method-assign]
    for name in ("event_packet_raw", "event_packet", "ack_packet"):
        setattr(hub_module, name, _timed("fan-out encoding", getattr(hub_module, name)))
    conn = hub_module.Connection
    conn.write = _timed("writes", conn.write)  # type: ignore[method-assign]
    conn.write_many = _timed("writes", conn.write_many)  # type: ignore[method-assign]


class Sink:
    """A transport that takes every byte at once."""

    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


async def run(events: int, receivers: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="anchorline-cpu-"))
    # Admission and emit budgets off: this measures what an accepted event costs.
    settings = bench_settings(work, f"sqlite:///{work / 'e.db'}", "FULL")
    app = create_app(settings, verifier=EmbeddedCA(work / "ca").trust_store())
    ctx = app[CONTEXT]
    await migrate(ctx.engine)
    await ctx.pipeline.start()
    hub = ctx.hub
    key = ec.generate_private_key(ec.SECP256R1())
    await joined_connections(hub, key, [Sink() for _ in range(receivers + 1)])
    _, packets = signed_packets(key, events)
    SPENT.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await feed(hub, packets)
    await ctx.pipeline.drain()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    accepted = ctx.metrics.events_accepted
    rest = cpu - sum(SPENT.values())
    print(
        f"{accepted} acknowledged events, {receivers} receivers: {accepted / wall:,.0f} "
        f"events/s wall, {cpu / accepted * 1e6:.0f} µs CPU per event (all threads)"
    )
    for stage, seconds in [*sorted(SPENT.items(), key=lambda kv: -kv[1]), ("the rest", rest)]:
        print(f"  {stage:<24} {seconds / accepted * 1e6:7.1f} µs  {seconds / cpu:5.0%}")
    await ctx.pipeline.stop()
    await hub.close()
    await ctx.engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--receivers", type=int, default=10)
    args = ap.parse_args()
    sys.setswitchinterval(0.0005)  # as `anchorline gateway run` sets
    instrument()
    asyncio.run(run(min(args.events, 100000), args.receivers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
