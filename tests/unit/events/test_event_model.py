"""Event shape checks and signatures over the canonical form."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.events.canonical import canonical_json
from gateway.events.errors import EventTooLarge, MalformedEvent
from gateway.events.model import parse_event
from gateway.identity.signing import verify

KEY = ec.generate_private_key(ec.SECP256R1())
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def signed(**over: Any) -> dict[str, Any]:
    body = {"id": "e-1", "channel": "auction-1", "type": "bid", "payload": {"a": 1}, "client_ts": 5}
    body.update(over)
    sig = KEY.sign(canonical_json(body), ec.ECDSA(hashes.SHA256()))
    return {**body, "signature": base64.b64encode(sig).decode()}


def test_a_valid_event_parses_and_verifies() -> None:
    event = parse_event(signed(), 16384)
    assert (
        event.canonical
        == b'{"channel":"auction-1","client_ts":5,"id":"e-1","payload":{"a":1},"type":"bid"}'
    )
    assert verify(KEY.public_key(), event.canonical, event.signature, require_low_s=False)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"id": 7}, "id"),
        ({"channel": "a/b"}, "channel"),
        ({"channel": None}, "channel"),
        ({"type": ""}, "type"),
        ({"client_ts": -1}, "client_ts"),
        ({"client_ts": True}, "client_ts"),
        ({"client_ts": 1.5}, "client_ts"),
        ({"client_ts": 2**60}, "client_ts"),
        ({"signature": "***"}, "signature"),
        ({"signature": "AAAA"}, "signature"),
        ({"extra": 1}, "unknown event field"),
    ],
)
def test_malformed_fields_are_named(change: dict[str, Any], field: str) -> None:
    raw = {**signed(), **change}
    with pytest.raises(MalformedEvent, match=field):
        parse_event(raw, 16384)


def test_missing_payload_and_non_object() -> None:
    raw = signed()
    del raw["payload"]
    with pytest.raises(MalformedEvent, match="payload"):
        parse_event(raw, 16384)
    with pytest.raises(MalformedEvent):
        parse_event(["not", "an", "object"], 16384)


def test_oversize_event_is_refused() -> None:
    with pytest.raises(EventTooLarge, match="limit is 100"):
        parse_event(signed(payload="x" * 200), 100)


def test_tampered_event_or_other_key_does_not_verify() -> None:
    event = parse_event(signed(), 16384)
    tampered = parse_event({**signed(), "payload": {"a": 2}}, 16384)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify(KEY.public_key(), tampered.canonical, tampered.signature, require_low_s=False)
    assert not verify(other, event.canonical, event.signature, require_low_s=False)
    assert not verify(KEY.public_key(), event.canonical, b"\x30\x02garbage", require_low_s=False)


def test_key_order_in_the_wire_form_does_not_matter() -> None:
    raw = signed()
    reordered = dict(reversed(list(raw.items())))
    event = parse_event(reordered, 16384)
    assert verify(KEY.public_key(), event.canonical, event.signature, require_low_s=False)


def test_high_s_signatures_verify_too() -> None:
    event = parse_event(signed(), 16384)
    r, s = decode_dss_signature(event.signature)
    flipped = encode_dss_signature(r, N - s)
    assert verify(KEY.public_key(), event.canonical, flipped, require_low_s=False)
