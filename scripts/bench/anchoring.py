"""Trust-path benchmark: ack → confirmed / finalized latency, sustained anchoring rate,
and the one-anchor-transaction-per-event anti-pattern side by side.

    .venv/bin/python scripts/bench/anchoring.py [--rate 1000] [--seconds 10]
        [--batch-ms 200] [--batch-events 1000] [--anti-seconds 10]
        [--profile PROFILE.json --msp GATEWAY_MSP [--org Org1]]

Runs in one process: the real event store (SQLite, group commit through the
gateway's EventPipeline), the real AnchoringService (batcher, outbox, worker,
read-back from another org) and the Fabric client. The ledger is the embedded
one in a temporary folder, or the native Fabric network of ``--profile``
(the gateway identity ``--msp`` of ``--org``). Events are signed before the
clock starts; "ack" is the moment the store committed the event (what the
member's acknowledgement reports), so the figures are the trust path's own.
Socket.IO is not in the loop (scripts/bench/gateway_events.py measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gateway.anchoring.batcher import GatewayIdentity  # noqa: E402
from gateway.anchoring.checkpoint import EcdsaNoteSigner  # noqa: E402
from gateway.anchoring.evidence import Evidence  # noqa: E402
from gateway.anchoring.ledger import FabricAnchorLedger  # noqa: E402
from gateway.anchoring.outbox import BatchStore  # noqa: E402
from gateway.anchoring.proof import verify_offline  # noqa: E402
from gateway.anchoring.service import AnchoringService  # noqa: E402
from gateway.config import load_settings  # noqa: E402
from gateway.events.canonical import canonical_json  # noqa: E402
from gateway.events.metrics import GatewayMetrics  # noqa: E402
from gateway.events.model import SignedEvent  # noqa: E402
from gateway.events.pipeline import EventPipeline  # noqa: E402
from gateway.events.publisher import StatusChange  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402
from gateway.identity.msp import load_msp  # noqa: E402
from gateway.identity.signing import sign_message  # noqa: E402
from gateway.store.engine import create_engine, migrate  # noqa: E402
from gateway.store.events import AppendResult, EventRepository, NewEvent  # noqa: E402
from gateway.store.models import identities  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Recorder:
    """Ack times per seq (pipeline callback) and status times per seq (publisher)."""

    def __init__(self) -> None:
        self.ack: dict[int, float] = {}
        self.confirmed: dict[int, float] = {}
        self.finalized: dict[int, float] = {}
        self.done = asyncio.Event()
        self.expect = 0

    def publish_status(self, change: StatusChange) -> None:
        now = time.perf_counter()
        target = self.confirmed if change.status == "confirmed" else self.finalized
        for seq in change.seqs:
            target.setdefault(seq, now)
        if self.expect and len(self.finalized) >= self.expect:
            self.done.set()


@dataclasses.dataclass
class GatewayAnchoring:
    """The trust path's anchor ledger and identity, as the gateway wires them."""

    ledger: FabricAnchorLedger
    identity: GatewayIdentity
    close: Any


@dataclasses.dataclass
class World:
    home: Path
    connect: Any
    member: Any
    close: Any


def embedded_world(home: Path) -> World:
    from gateway.ledger.embedded import EmbeddedLedger, config_from_settings
    from gateway.ledger.embedded_client import embedded_gateway

    settings = _settings(home)
    ledger = EmbeddedLedger.open(config_from_settings(settings))
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    gw_dir = ca.enroll("Org1", "bench-gateway", "admin")
    member_dir = ca.enroll("Org2", "bench-member", "member")
    member = load_msp(member_dir, "Org2MSP", require_key=True)

    def connect() -> GatewayAnchoring:
        folder = load_msp(gw_dir, "Org1MSP", require_key=True)
        gw = embedded_gateway(ledger, gw_dir, org="Org1")
        anchor = FabricAnchorLedger(
            gw,
            fabric_channel=settings.network.channel,
            chaincode="anchorline",
            reader_msp="Org2MSP",
        )
        return GatewayAnchoring(
            anchor, GatewayIdentity(folder.identity, folder.signer()), anchor.close
        )

    return World(home, connect, member, ledger.close)


def fabric_world(home: Path, profile: str, msp: str, org: str) -> World:
    from gateway.ledger.connection import from_profile
    from gateway.ledger.profile import NetworkProfile

    loaded = NetworkProfile.load(Path(profile))
    own = loaded.org(org)
    reader = next(o.msp_id for o in loaded.orgs if o.msp_id != own.msp_id)
    member = load_msp(msp, own.msp_id, require_key=True)  # the gateway signs events too

    def connect() -> GatewayAnchoring:
        folder = load_msp(msp, own.msp_id, require_key=True)
        gw = from_profile(loaded, msp, org=own.name)
        anchor = FabricAnchorLedger(
            gw, fabric_channel=loaded.channel, chaincode="anchorline", reader_msp=reader
        )
        return GatewayAnchoring(
            anchor, GatewayIdentity(folder.identity, folder.signer()), anchor.close
        )

    async def nothing() -> None:
        return None

    return World(home, connect, member, nothing)


def _settings(home: Path) -> Any:
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(
            base.ledger, embedded_contracts="chaincode.anchorline:CONTRACTS"
        ),
    )


def signed_events(member: Any, channel: str, count: int) -> list[NewEvent]:
    out = []
    signer = member.signer()
    for k in range(count):
        body = {
            "id": f"{channel}-{k}",
            "channel": channel,
            "type": "bid",
            "payload": {"n": k, "lot": "lot-7"},
            "client_ts": 1_764_000_000_000 + k,
        }
        canonical = canonical_json(body)
        ev = SignedEvent(
            body["id"],
            channel,
            "bid",
            body["payload"],
            body["client_ts"],
            sign_message(signer, canonical),
            canonical,
        )
        out.append(NewEvent(ev, member.identity.fingerprint, member.msp_id, 0))
    return out


async def run_phase(
    world: World,
    db: Path,
    *,
    channel: str,
    rate: float | None,
    count: int,
    batch_events: int,
    batch_ms: int,
    timeout: float,
) -> dict[str, Any]:
    """Feed ``count`` events (at ``rate``/s, or all at once) and wait for them to finalize."""
    engine = create_engine(f"sqlite:///{db}", "NORMAL")
    await migrate(engine)
    async with engine.begin() as conn:
        m = world.member
        await conn.execute(
            identities.insert()
            .prefix_with("OR IGNORE")
            .values(
                fingerprint=m.identity.fingerprint,
                msp_id=m.msp_id,
                role="member",
                subject="bench",
                certificate=m.identity.certificate_pem.decode(),
                not_after_ms=0,
                first_seen_ms=0,
                last_seen_ms=0,
            )
        )
    events = EventRepository(engine)
    pipeline = EventPipeline(events, max_batch=1024, queue_limit=10**7, metrics=GatewayMetrics())
    recorder = Recorder()
    recorder.expect = count
    conn = world.connect()
    settings = load_settings({"ANCHORLINE_HOME": str(world.home)}).anchoring
    settings = dataclasses.replace(
        settings,
        batch_max_events=batch_events,
        batch_max_ms=batch_ms,
        backlog_limit_events=10**9,
        retry_max_ms=1000,
    )
    store = BatchStore(engine)
    service = AnchoringService(
        settings,
        store=store,
        events=events,
        ledger=conn.ledger,
        identity=conn.identity,
        publisher=recorder,
        follow=False,
    )
    pipeline.add_listener(service.on_committed)
    await pipeline.start()
    await service.start()
    items = signed_events(world.member, channel, count)

    def on_done(result: AppendResult | Exception) -> None:
        if isinstance(result, AppendResult):
            recorder.ack[result.stored.seq] = time.perf_counter()

    started = time.perf_counter()
    if rate is None:
        for item in items:
            pipeline.submit(item, on_done)
    else:
        tick = 0.01
        per_tick = rate * tick
        sent = 0
        while sent < count:
            due = int(min(count, per_tick * ((time.perf_counter() - started) / tick + 1)))
            while sent < due:
                pipeline.submit(items[sent], on_done)
                sent += 1
            await asyncio.sleep(tick)
    fed = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(recorder.done.wait(), timeout)
    elapsed = time.perf_counter() - started
    batches = len(await store.listing(channel, limit=10**9))
    await service.stop()
    await pipeline.stop()
    # Measured once the trust path is idle, so the figure is the verifier's own.
    proof_us = None
    if recorder.finalized and _trust(world).msp_ids:
        evidence = Evidence(
            store,
            events,
            fabric_channel=conn.ledger.fabric_channel,
            chaincode="anchorline",
            note_signer=EcdsaNoteSigner(
                "bench", conn.identity.identity.public_key, conn.identity.signer
            ),
            origin_prefix="bench",
        )
        proof = await evidence.event_proof(channel, 1)
        trust = _trust(world)
        verify_offline(proof, trust)  # warm the certificate chain cache
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            verdict = verify_offline(proof, trust)
        proof_us = (time.perf_counter() - t0) / n * 1e6
        assert verdict.ok, verdict.summary()
    await conn.close()
    await engine.dispose()
    to_conf = [
        recorder.confirmed[s] - recorder.ack[s] for s in recorder.confirmed if s in recorder.ack
    ]
    to_fin = [
        recorder.finalized[s] - recorder.ack[s] for s in recorder.finalized if s in recorder.ack
    ]
    last_fin = max(recorder.finalized.values(), default=started)
    return {
        "events": count,
        "finalized": len(recorder.finalized),
        "batches": batches,
        "feed_s": fed,
        "elapsed_s": elapsed,
        "finalized_rate": len(recorder.finalized) / max(1e-9, last_fin - started),
        "confirmed_p50": pct(to_conf, 0.5),
        "confirmed_p99": pct(to_conf, 0.99),
        "finalized_p50": pct(to_fin, 0.5),
        "finalized_p99": pct(to_fin, 0.99),
        "finalized_mean": statistics.fmean(to_fin) if to_fin else float("nan"),
        "proof_verify_us": proof_us,
    }


def _trust(world: World) -> Any:
    from gateway.identity.certificates import TrustStore

    ca_root = world.home / "embedded" / "ca"
    if ca_root.is_dir():
        return EmbeddedCA(ca_root).trust_store()
    return TrustStore()


def show(name: str, r: dict[str, Any]) -> None:
    print(f"\n== {name}")
    print(
        f"   events {r['events']}, finalized {r['finalized']} in {r['batches']} anchor batch(es); "
        f"fed in {r['feed_s']:.2f} s, all finalized after {r['elapsed_s']:.2f} s"
    )
    print(
        f"   ack -> confirmed  p50 {r['confirmed_p50'] * 1000:8.1f} ms   p99 "
        f"{r['confirmed_p99'] * 1000:8.1f} ms"
    )
    print(
        f"   ack -> finalized  p50 {r['finalized_p50'] * 1000:8.1f} ms   p99 "
        f"{r['finalized_p99'] * 1000:8.1f} ms"
    )
    print(f"   sustained anchoring rate: {r['finalized_rate']:,.0f} events/s finalized")
    if r["proof_verify_us"] is not None:
        print(
            f"   one proof, offline verification (certificates, signatures, inclusion): "
            f"{r['proof_verify_us']:.0f} µs"
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch-ms", type=int, default=200)
    ap.add_argument("--batch-events", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=20000, help="events for the max-rate phase")
    ap.add_argument("--anti-seconds", type=float, default=10.0)
    ap.add_argument("--profile")
    ap.add_argument("--msp")
    ap.add_argument("--org", default="Org1")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as tmp:
        home = Path(tmp)
        if args.profile:
            world = fabric_world(home, args.profile, args.msp, args.org)
            ledger = f"Fabric network {args.profile}"
        else:
            world = embedded_world(home)
            ledger = "embedded ledger (block every 20 ms or 100 tx)"
        print(
            f"ledger: {ledger}; batches close at {args.batch_events} events or {args.batch_ms} ms"
        )
        tag = str(int(time.time()))
        steady = await run_phase(
            world,
            home / "steady.db",
            channel=f"steady{tag}",
            rate=args.rate,
            count=int(args.rate * args.seconds),
            batch_events=args.batch_events,
            batch_ms=args.batch_ms,
            timeout=60,
        )
        show(f"steady load {args.rate:.0f} events/s for {args.seconds:.0f} s", steady)
        burst = await run_phase(
            world,
            home / "burst.db",
            channel=f"burst{tag}",
            rate=None,
            count=args.burst,
            batch_events=args.batch_events,
            batch_ms=args.batch_ms,
            timeout=120,
        )
        show(f"max rate: {args.burst} events queued at once", burst)
        # The seed's anti-pattern: one anchor transaction per event (batches of one).
        anti_count = 2000
        anti = await run_phase(
            world,
            home / "anti.db",
            channel=f"anti{tag}",
            rate=None,
            count=anti_count,
            batch_events=1,
            batch_ms=0,
            timeout=args.anti_seconds,
        )
        show(
            f"anti-pattern: one anchor transaction per event ({args.anti_seconds:.0f} s window)",
            anti,
        )
        ratio = burst["finalized_rate"] / max(1e-9, anti["finalized_rate"])
        print(
            f"\nsustained rate, batched / one-tx-per-event: {burst['finalized_rate']:,.0f} / "
            f"{anti['finalized_rate']:,.1f} = {ratio:,.0f}x"
        )
        await world.close()


if __name__ == "__main__":
    asyncio.run(main())
