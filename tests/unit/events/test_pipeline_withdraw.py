"""Withdrawing queued events: a revoked member's emits in flight are refused, not stored."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.authorizer import Authorizer, ConfigPolicy
from gateway.auth.errors import SessionRevoked
from gateway.auth.principal import Principal
from gateway.errors import AnchorlineError
from gateway.events.intake import IntakeLimits, intake_authorized
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import AppendResult
from gateway.events.pipeline import EventPipeline
from gateway.events.signed import sign_event
from gateway.identity.signing import EcdsaSigner
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository


async def test_withdrawn_events_are_refused_and_the_others_stored(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}", "NORMAL")
    await migrate(engine)
    repo = EventRepository(engine, "NORMAL")
    pipeline = EventPipeline(repo, max_batch=100, queue_limit=100, metrics=GatewayMetrics())
    authorizer = Authorizer([ConfigPolicy("*=member", "member")], 30.0)
    limits = IntakeLimits(max_event_bytes=4096)
    results: dict[str, AppendResult | AnchorlineError] = {}
    for name in ("rita", "alice"):
        key = ec.generate_private_key(ec.SECP256R1())
        principal = Principal(
            f"s-{name}", f"fp-{name}", "Org1MSP", "member", 2**62, key.public_key()
        )
        for i in range(3):
            wire = sign_event(EcdsaSigner(key), channel="c", type="t", payload=i)
            item = await intake_authorized(principal, wire, limits, authorizer, 1)
            event_id = f"{name}-{i}"

            def done(result: AppendResult | AnchorlineError, event_id: str = event_id) -> None:
                results[event_id] = result

            pipeline.submit(item, done, origin=name)
    # Queued before the writer starts, so none is in a commit yet.
    refusal = SessionRevoked("the certificate was revoked")
    assert pipeline.withdraw(lambda item, _origin: item.signer == "fp-rita", refusal) == 3
    assert pipeline.withdraw(lambda _item, origin: origin == "nobody", refusal) == 0
    assert pipeline.depth == 3
    await pipeline.start()
    await pipeline.drain()
    await pipeline.stop()
    assert all(results[f"rita-{i}"] is refusal for i in range(3))
    assert all(isinstance(results[f"alice-{i}"], AppendResult) for i in range(3))
    assert await repo.count() == 3
    await repo.close()
    await engine.dispose()
