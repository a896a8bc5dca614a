"""Where the fast path's CPU goes, per acknowledged event (issue 15, "Where the time goes").

Runs the real hub, intake, pipeline and SQLite store in this process, as
``gateway_inprocess.py`` does (pre-signed Socket.IO packets fed to the hub as
the adapter would, ``--receivers`` connections whose transports take every
byte at once), with perf counters around each stage:

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

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import gateway.events.intake as intake_module  # noqa: E402
import gateway.events.model as model_module  # noqa: E402
import gateway.store.events as store_module  # noqa: E402
import gateway.stream.hub as hub_module  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.auth.principal import Principal  # noqa: E402
from gateway.context import CONTEXT  # noqa: E402
from gateway.events.signed import sign_event  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.identity.signing import EcdsaSigner  # noqa: E402
from gateway.store.engine import migrate  # noqa: E402
from gateway.stream.frames import Outgoing, parse_event_packet  # noqa: E402
from tests.integration.gateway.support import make_settings  # noqa: E402

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


def _no_fallback(conn: hub_module.Connection, out: Outgoing) -> int:
    raise AssertionError("every connection here writes directly")


def _signed_packets(key: ec.EllipticCurvePrivateKey, count: int) -> list[str]:
    signer = EcdsaSigner(key)
    events = (
        sign_event(
            signer,
            channel="load",
            type="bid",
            payload={"amount": i, "note": "x" * 120},
            event_id=f"e{i}",
            client_ts=1,
        )
        for i in range(count)
    )
    return ["2" + str(i) + orjson.dumps(["event", e]).decode() for i, e in enumerate(events)]


async def run(events: int, receivers: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="anchorline-cpu-"))
    # Admission off: this measures what an accepted event costs, not refusals.
    settings = make_settings(
        work,
        f"sqlite:///{work / 'e.db'}",
        sqlite_synchronous="FULL",
        admission_max_queue_wait_ms=0,
        admission_max_loop_lag_ms=0,
    )
    app = create_app(settings, verifier=EmbeddedCA(work / "ca").trust_store())
    ctx = app[CONTEXT]
    await migrate(ctx.engine)
    await ctx.pipeline.start()
    hub = ctx.hub
    key = ec.generate_private_key(ec.SECP256R1())
    for i in range(receivers + 1):
        principal = Principal(f"s{i}", f"fp{i}", "Org1MSP", "member", 2**62, key.public_key())
        conn = hub_module.Connection(f"c{i}", f"c{i}", principal, "127.0.0.1", _no_fallback)
        conn.transport = Sink()  # type: ignore[assignment]
        hub.connections[conn.eio_sid] = conn
        await hub._join(conn, "load", None)
    packets = _signed_packets(key, events)
    SPENT.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, data in enumerate(packets):
        incoming = parse_event_packet(data)
        assert incoming is not None
        hub.dispatch("c0", incoming, time.perf_counter())
        if i % 64 == 63:
            await asyncio.sleep(0)
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
