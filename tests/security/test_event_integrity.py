"""Threat: an event that claims another signer, or a payload changed after signing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.anchoring.leaf import leaf_hash_from_canonical
from gateway.anchoring.proof import (
    Anchor,
    BatchRecord,
    EventProof,
    ProvenEvent,
    batch_signing_bytes,
    build_event_proof,
    verify_offline,
)
from gateway.auth.principal import Principal
from gateway.errors import AnchorlineError
from gateway.events.canonical import canonical_json
from gateway.events.intake import GATEWAY_AUTHORITY, IntakeLimits, intake
from gateway.events.model import check_servable
from gateway.events.signed import sign_event
from gateway.identity.ca import EmbeddedCA
from gateway.identity.signing import EcdsaSigner, sign_message
from gateway.merkle import RFC6962_SHA256, MerkleTree
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository
from gateway.stream.frames import parse_event_packet
from tests.integration.gateway.support import Identities
from tests.security.support import CHANNEL, arena, assert_unharmed
from tests.unit.anchoring.test_event_proof import World, _identity


async def test_a_changed_payload_or_anothers_signature_is_refused(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        signed = sign_event(a.attacker.signer, channel=CHANNEL, type="bid", payload={"amount": 1})
        changed = {**signed, "payload": {"amount": 999}}
        ack = await a.attacker.emit_signed(changed)
        assert ack.error is not None and ack.error["code"] == "AL1603"
        # Alice's genuine event, sent on Bob's session: it does not verify as his.
        hers = sign_event(a.witness.signer, channel=CHANNEL, type="bid", payload={"amount": 2})
        ack = await a.attacker.emit_signed(hers)
        assert ack.error is not None and ack.error["code"] == "AL1603"
        # An extra field beside the signed ones.
        ack = await a.attacker.emit_signed({**signed, "signer": "ab" * 32})
        assert ack.error is not None and ack.error["code"] == "AL1601"
        await assert_unharmed(a)


# -- the fuzz: any wire event is refused with a code, or round-trips to a verified proof ---

_payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "x" * 9000, "é😀", "\u2028"]),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=6), c, max_size=3)
        | c.map(lambda v: [[[[[[[[[[v]]]]]]]]]])
    ),  # deep quickly
    max_leaves=8,
)


@pytest.fixture(scope="module")
def proof_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    alice = _identity(ca, "Org1", "alice", "member")
    bob = _identity(ca, "Org2", "bob", "member")
    gateway = _identity(ca, "Org3", "gateway", "admin")
    return World(ca, ca.trust_store(), alice, bob, gateway, [])


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[EventRepository]:
    engine = create_engine(f"sqlite:///{tmp_path / 'fuzz.db'}")
    await migrate(engine)
    repository = EventRepository(engine, "NORMAL")
    yield repository
    await repository.close()
    await engine.dispose()


def _wire(signed: dict[str, Any]) -> Any:
    """What the wire would carry: the packet JSON read back by the strict reader."""
    text = json.dumps(["event", signed], allow_nan=True, ensure_ascii=False)
    return parse_event_packet("27" + text)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=_payloads, n=st.integers(min_value=0, max_value=10**9))
async def test_any_wire_event_is_refused_with_a_code_or_verifies_after_the_round_trip(
    proof_world: World, repo: EventRepository, payload: Any, n: int
) -> None:
    alice = proof_world.alice
    signer = EcdsaSigner(alice.key)
    body = {"id": f"fz-{n}", "channel": "fuzz", "type": "t", "payload": payload, "client_ts": 1}
    try:
        canonical = canonical_json(body)
    except AnchorlineError:
        return  # not even signable: nothing to send
    signed = {**body, "signature": base64.b64encode(sign_message(signer, canonical)).decode()}
    incoming = _wire(signed)
    assert incoming is not None
    principal = Principal(
        "s", alice.fingerprint, alice.msp_id, "member", 2**62, alice.key.public_key()
    )
    try:
        if incoming.refused is not None:
            raise incoming.refused
        item = intake(principal, incoming.args[0], IntakeLimits(), GATEWAY_AUTHORITY, 1)
    except AnchorlineError as exc:
        assert exc.code.startswith("AL1"), exc
        return
    # Accepted: it must store, replay, batch, prove and verify.
    [result] = await repo.append([item])
    if result.duplicate:
        return
    [replayed] = await repo.after("fuzz", result.stored.seq - 1, 1)
    check_servable(replayed)
    leaf = leaf_hash_from_canonical(
        replayed.canonical, seq=replayed.seq, signer=replayed.signer, signature=replayed.signature
    )
    fields = {
        "batch_id": f"fuzz/{replayed.seq}",
        "channel": "fuzz",
        "root": MerkleTree(RFC6962_SHA256, [leaf]).root(),
        "leaf_count": 1,
        "first_seq": replayed.seq,
        "last_seq": replayed.seq,
        "prev_root": bytes(32),
    }
    gw = proof_world.gateway
    batch = BatchRecord(
        **fields,
        signature=sign_message(EcdsaSigner(gw.key), batch_signing_bytes(**fields)),
        certificate_pem=gw.pem,
        msp_id=gw.msp_id,
    )
    event = ProvenEvent(
        id=replayed.id,
        channel=replayed.channel,
        type=replayed.type,
        payload=replayed.payload,
        client_ts=replayed.client_ts,
        seq=replayed.seq,
        signer=replayed.signer,
        signature=replayed.signature,
        certificate_pem=alice.pem,
        msp_id=replayed.msp_id,
    )
    proof = build_event_proof(
        event=event,
        batch=batch,
        batch_leaves=[leaf],
        anchor=Anchor("tx", 1, "anchorline", "anchorline"),
        status="finalized",
    )
    again = EventProof.from_json(proof.to_json_text())
    verdict = verify_offline(again, proof_world.trust)
    assert verdict.ok, verdict.summary()
    assert again.event.payload == payload or payload != payload  # NaN never gets here
