"""EventPipeline.admit, the door of every member's event: the identity's emit budget,
then admission (fair between identities); submit refuses only at the queue bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.principal import Principal
from gateway.errors import AnchorlineError
from gateway.events.admission import Admission, AdmissionLimits
from gateway.events.budget import EmitBudget
from gateway.events.errors import EmitRateLimited, Overloaded
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import AppendResult, NewEvent
from gateway.events.pipeline import EventPipeline
from gateway.events.signed import sign_event
from gateway.identity.signing import EcdsaSigner
from gateway.store.engine import create_engine
from gateway.store.events import EventRepository


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _item(name: str, n: int) -> NewEvent:
    key = ec.generate_private_key(ec.SECP256R1())
    principal = Principal(f"s-{name}", f"fp-{name}", "Org1MSP", "member", 2**62, key.public_key())
    wire = sign_event(EcdsaSigner(key), channel="c", type="t", payload=n)
    return intake(principal, wire, IntakeLimits(), GATEWAY_AUTHORITY, 1)


def _ignore(result: AppendResult | AnchorlineError) -> None:
    return None


def _pipeline(tmp_path: Path, admission: Admission, budget: EmitBudget | None) -> EventPipeline:
    # The writer is never started: what is submitted stays queued.
    repo = EventRepository(create_engine(f"sqlite:///{tmp_path / 'e.db'}", "NORMAL"), "NORMAL")
    return EventPipeline(
        repo,
        max_batch=10,
        queue_limit=admission.limits.queue_limit,
        metrics=GatewayMetrics(),
        admission=admission,
        identity_budget=budget,
    )


def test_admit_spends_the_identity_budget_before_admission(tmp_path: Path) -> None:
    t = FakeTime()
    admission = Admission(AdmissionLimits(queue_limit=100), now=t)
    pipeline = _pipeline(tmp_path, admission, EmitBudget(1, 2, "identity", now=t))
    pipeline.admit("fp-a")
    pipeline.admit("fp-a")
    with pytest.raises(EmitRateLimited) as refused:
        pipeline.admit("fp-a")
    assert refused.value.code == "AL1610" and refused.value.details["retry_after"] == 1000
    pipeline.admit("fp-b")  # another identity has its own budget
    # A budget refusal is not an admitted event: it does not add to the identity's share.
    assert admission.shares.count("fp-a") == 2.0
    assert pipeline.identity_budget.enabled


def test_a_light_identity_passes_a_tripped_wait_rule_and_submit_only_bounds_the_queue(
    tmp_path: Path,
) -> None:
    t = FakeTime()
    admission = Admission(AdmissionLimits(queue_limit=3, max_queue_wait_ms=40), now=t)
    pipeline = _pipeline(tmp_path, admission, None)
    assert not pipeline.identity_budget.enabled  # none given: no budget applies
    for n in range(2):
        pipeline.admit("fp-heavy")
        pipeline.submit(_item("heavy", n), _ignore)
    time.sleep(0.05)  # the oldest queued event has now waited more than 40 ms
    with pytest.raises(Overloaded):
        pipeline.admit("fp-heavy")
    pipeline.admit("fp-light")
    assert admission.spared == 1
    # Once admitted, an event is queued whatever the latency rules say now ...
    pipeline.submit(_item("light", 0), _ignore)
    assert pipeline.depth == 3
    # ... up to the hard bound, which refuses everyone (the gateway's own events too).
    with pytest.raises(Overloaded) as full:
        pipeline.submit(_item("gateway", 0), _ignore)
    assert full.value.message.startswith("the gateway is overloaded (3 events wait")
    with pytest.raises(Overloaded):
        pipeline.admit("fp-newcomer")
    assert admission.refused == {"queue": 2, "wait": 1, "lag": 0}
