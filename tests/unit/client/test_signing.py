"""The client library's offline event signing matches what the gateway verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.client import GatewayRefused, MemberClient, sign_event
from gateway.events.model import parse_event
from gateway.identity.ca import EmbeddedCA
from gateway.identity.errors import MspFolderError
from gateway.identity.signing import verify


def test_signed_event_verifies_with_the_member_certificate(tmp_path: Path) -> None:
    msp = EmbeddedCA(tmp_path).enroll("Org1", "alice", "member")
    client = MemberClient.from_msp("http://127.0.0.1:1", msp, "Org1MSP")
    raw = sign_event(client.signer, channel="c", type="bid", payload={"amount": 3}, event_id="e1")
    event = parse_event(raw, 16384)
    assert event.id == "e1" and isinstance(event.client_ts, int)
    assert verify(
        client.msp.identity.public_key, event.canonical, event.signature, require_low_s=False
    )
    other = sign_event(client.signer, channel="c", type="bid", payload={"amount": 3})
    assert other["id"] != "e1" and len(other["id"]) == 32


def test_an_msp_folder_without_a_key_cannot_sign(tmp_path: Path) -> None:
    msp = EmbeddedCA(tmp_path).enroll("Org1", "bob", "member")
    for key in (msp / "keystore").iterdir():
        key.unlink()
    with pytest.raises(MspFolderError):
        MemberClient.from_msp("http://127.0.0.1:1", msp, "Org1MSP")


async def test_unreachable_gateway_and_emit_before_connect(tmp_path: Path) -> None:
    msp = EmbeddedCA(tmp_path).enroll("Org1", "carol", "member")
    client = MemberClient.from_msp("http://127.0.0.1:1", msp, "Org1MSP")
    try:
        with pytest.raises(GatewayRefused, match="not connected"):
            await client.emit("c", "t", 1)
    finally:
        await client.close()
