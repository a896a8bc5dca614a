"""Signatures checked in batches on the worker process: the same verdicts as inline, one
answer per event, in the order given, and inline again when the worker is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.principal import Principal
from gateway.events.errors import Overloaded
from gateway.events.intake import IntakeLimits, read_event, signature_ok
from gateway.events.model import SignedEvent
from gateway.events.signed import sign_event
from gateway.events.verifier import SignatureVerifier, check_batch
from gateway.identity.signing import EcdsaSigner


def _member(name: str) -> tuple[Principal, EcdsaSigner]:
    key = ec.generate_private_key(ec.SECP256R1())
    principal = Principal(f"s-{name}", f"fp-{name}", "Org1MSP", "member", 2**62, key.public_key())
    return principal, EcdsaSigner(key)


def _events(count: int) -> list[tuple[Principal, SignedEvent, bool]]:
    """``count`` events of two members, every third one forged (signed by the other)."""
    members = [_member("alice"), _member("bob")]
    out = []
    for i in range(count):
        principal, own = members[i % 2]
        forged = i % 3 == 2
        signer = members[(i + 1) % 2][1] if forged else own
        raw = sign_event(signer, channel="c", type="t", payload=i, event_id=f"e{i}")
        out.append((principal, read_event(raw, IntakeLimits()), not forged))
    return out


async def _check_all(
    verifier: SignatureVerifier, events: list[tuple[Principal, SignedEvent, bool]]
) -> list[tuple[str, bool]]:
    answers: list[tuple[str, bool]] = []
    for principal, event, _ in events:
        verifier.check(principal, event, lambda ok, i=event.id: answers.append((i, ok)))
    await asyncio.wait_for(verifier.drain(), 30)
    return answers


async def _started(verifier: SignatureVerifier, principal: Principal, event: SignedEvent) -> None:
    """Give the verifier a batch, so that it starts its worker, and wait until it is up."""
    for _ in range(2):
        verifier.check(principal, event, lambda ok: None)
    for _ in range(3000):
        await asyncio.sleep(0.01)
        if verifier._worker is not None:
            return
    pytest.fail("the signature worker did not start within 30 s")


async def test_the_worker_gives_the_inline_verdicts_in_the_order_given() -> None:
    events = _events(30)
    assert [signature_ok(p, e) for p, e, _ in events] == [ok for _, _, ok in events]
    verifier = SignatureVerifier(offload=True, min_batch=2)
    try:
        await _started(verifier, events[0][0], events[0][1])
        before = verifier.offloaded_events
        answers = await _check_all(verifier, events)
        assert answers == [(e.id, ok) for _, e, ok in events]
        assert verifier.offloaded_events - before == len(events)  # one batch, on the worker
        assert verifier.worker_cpu_s > 0  # its CPU is counted, though not in this process
    finally:
        await verifier.close()


async def test_a_lone_event_is_checked_inline_and_offloading_off_answers_at_once() -> None:
    principal, event, _ = _events(1)[0]
    verifier = SignatureVerifier(offload=True, min_batch=2)
    try:
        assert await _check_all(verifier, [(principal, event, True)]) == [(event.id, True)]
        assert (verifier.inline_events, verifier.offloaded_events) == (1, 0)
        assert verifier._starting is None  # no worker for a batch of one
    finally:
        await verifier.close()
    off = SignatureVerifier(offload=False)
    answers: list[bool] = []
    off.check(principal, event, answers.append)
    assert answers == [True]


async def test_a_dead_worker_s_batches_are_answered_inline_in_order() -> None:
    events = _events(12)
    verifier = SignatureVerifier(offload=True, min_batch=2)
    try:
        await _started(verifier, events[0][0], events[0][1])
        await verifier.drain()
        worker = verifier._worker
        assert worker is not None
        worker._proc.kill()  # in flight: the batch below goes to a worker that is dying
        answers = await _check_all(verifier, events)
        assert answers == [(e.id, ok) for _, e, ok in events]
        assert verifier._worker is None
    finally:
        await verifier.close()


async def test_too_many_waiting_are_refused_as_overload() -> None:
    principal, event, _ = _events(1)[0]
    verifier = SignatureVerifier(offload=True, min_batch=4, max_pending=3)
    answers: list[bool] = []
    for _ in range(3):
        verifier.check(principal, event, answers.append)
    with pytest.raises(Overloaded) as refused:
        verifier.check(principal, event, answers.append)
    assert refused.value.details["retry_after"] == 100
    await verifier.close()
    assert answers == [True] * 3


def test_the_worker_s_rule_refuses_what_the_intake_refuses() -> None:
    (principal, event, _), (other, forged, _) = _events(3)[0], _events(3)[2]
    from cryptography.hazmat.primitives import serialization

    def item(p: Principal, e: SignedEvent) -> bytes:
        key = p.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return struct.pack("!HIH", len(key), len(e.canonical), len(e.signature)) + (
            key + e.canonical + e.signature
        )

    garbled = dataclasses.replace(event, signature=b"\x30\x02\x00")
    body = item(principal, event) + item(other, forged) + item(principal, garbled)
    assert check_batch(body) == bytes([1, 0, 0])
