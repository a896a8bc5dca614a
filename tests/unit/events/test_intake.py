"""The one event intake: its steps, their order and their refusals, for every door."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.authorizer import Authorizer, ConfigPolicy
from gateway.auth.errors import AccessDenied
from gateway.auth.principal import Principal
from gateway.config import load_settings
from gateway.errors import AnchorlineError
from gateway.events.errors import BadEventSignature, EventTooLarge, MalformedEvent, NotJoined
from gateway.events.intake import (
    GATEWAY_AUTHORITY,
    EmitGate,
    IntakeLimits,
    intake,
    intake_authorized,
)
from gateway.events.signed import sign_event
from gateway.identity.signing import EcdsaSigner
from gateway.stream.frames import Outgoing
from gateway.stream.hub import Connection

LIMITS = IntakeLimits(max_event_bytes=1024)


class _Member:
    def __init__(self, name: str, role: str = "member") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(self.key)
        self.principal = Principal(
            f"s-{name}", f"fp-{name}", "Org1MSP", role, 2**62, self.key.public_key()
        )

    def event(
        self, channel: str = "c", payload: object = 1, event_id: str = "e1"
    ) -> dict[str, Any]:
        return sign_event(
            self.signer, channel=channel, type="t", payload=payload, event_id=event_id
        )


def _no_fallback(conn: Connection, out: Outgoing) -> int:
    raise AssertionError("not written to")


def _connection(member: _Member, *, joined: bool, can_write: bool) -> Connection:
    conn = Connection("eio", "sid", member.principal, "127.0.0.1", _no_fallback)
    if joined:
        conn.channels.add("c")
        conn.can_write["c"] = can_write
    return conn


def _refusal(principal: Principal, raw: object, gate: EmitGate) -> AnchorlineError:
    with pytest.raises(AnchorlineError) as info:
        intake(principal, raw, LIMITS, gate, 0)
    return info.value


def test_an_accepted_event_is_attributed_to_its_principal() -> None:
    alice = _Member("alice")
    gate = _connection(alice, joined=True, can_write=True)
    item = intake(alice.principal, alice.event(), LIMITS, gate, 1234)
    assert (item.signer, item.msp_id, item.received_ms) == ("fp-alice", "Org1MSP", 1234)
    assert item.event.id == "e1" and item.event.channel == "c"


def test_steps_run_in_order_shape_then_gate_then_signature() -> None:
    alice, mallory = _Member("alice"), _Member("mallory")
    me = alice.principal
    outsider = _connection(alice, joined=False, can_write=False)
    reader = _connection(alice, joined=True, can_write=False)
    writer = _connection(alice, joined=True, can_write=True)
    # Shape before anything: a malformed event from a non-member is malformed.
    assert isinstance(_refusal(me, {**alice.event(), "extra": 1}, outsider), MalformedEvent)
    assert isinstance(_refusal(me, alice.event(payload="x" * 2000), outsider), EventTooLarge)
    # The gate before the signature: a forged event to a channel not joined is NotJoined.
    forged = mallory.event()
    assert isinstance(_refusal(me, forged, outsider), NotJoined)
    denied = _refusal(me, forged, reader)
    assert isinstance(denied, AccessDenied)
    assert denied.message == "role 'member' may not emit to 'c'"
    assert isinstance(_refusal(me, forged, writer), BadEventSignature)


def test_the_limits_are_the_configured_ones(tmp_path: Path) -> None:
    env = {"ANCHORLINE_HOME": str(tmp_path), "ANCHORLINE_GATEWAY_MAX_PAYLOAD_BYTES": "64"}
    limits = IntakeLimits.from_settings(load_settings(env).gateway)
    assert limits == IntakeLimits(max_event_bytes=64)


async def test_the_authorizer_decides_for_async_callers_with_the_same_refusal() -> None:
    authorizer = Authorizer([ConfigPolicy("*=member,admin,auditor", "member,admin")], 30.0)
    seller, auditor = _Member("seller"), _Member("audrey", role="auditor")
    item = await intake_authorized(seller.principal, seller.event(), LIMITS, authorizer, 7)
    assert item.signer == "fp-seller"
    with pytest.raises(AccessDenied) as info:
        await intake_authorized(auditor.principal, auditor.event(), LIMITS, authorizer, 7)
    assert info.value.message == "role 'auditor' may not emit to 'c'"
    with pytest.raises(EventTooLarge):
        await intake_authorized(
            seller.principal, seller.event(payload="x" * 2000), LIMITS, authorizer, 7
        )


def test_the_gateways_own_events_pass_every_check_but_the_channel_gate() -> None:
    gateway = _Member("gateway", role="admin")
    item = intake(gateway.principal, gateway.event(), LIMITS, GATEWAY_AUTHORITY, 9)
    assert item.signer == "fp-gateway"
    other = _Member("other")
    with pytest.raises(BadEventSignature):
        intake(gateway.principal, other.event(), LIMITS, GATEWAY_AUTHORITY, 9)
    with pytest.raises(EventTooLarge):
        intake(gateway.principal, gateway.event(payload="x" * 2000), LIMITS, GATEWAY_AUTHORITY, 9)


def test_sign_event_is_what_the_client_library_exports() -> None:
    from gateway.client import sign_event as client_sign_event

    assert client_sign_event is sign_event
