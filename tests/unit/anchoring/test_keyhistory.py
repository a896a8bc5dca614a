"""The key history document: JSON round trip, malformed input, the gateway-key check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.anchoring.errors import KeyHistoryError
from gateway.anchoring.keyhistory import GatewayKey, KeyHistory, Mark
from gateway.identity.ca import EmbeddedCA
from gateway.identity.msp import load_msp


def _cert(tmp_path: Path, name: str) -> str:
    ca = EmbeddedCA(tmp_path / "ca")
    return load_msp(ca.enroll("Org1", name, "admin"), "Org1MSP").identity.certificate_pem.decode()


def test_round_trip_and_the_gateway_key_check(tmp_path: Path) -> None:
    old, new = _cert(tmp_path, "gw-1"), _cert(tmp_path, "gw-2")
    history = KeyHistory(
        (
            GatewayKey(
                old, "Org1MSP", 0, retired_at_ms=1_700_000_000_000, retired_after={"m": Mark(3, 40)}
            ),
            GatewayKey(new, "Org1MSP", 1_700_000_000_000),
        )
    )
    again = KeyHistory.from_json(json.dumps(history.to_json()))
    assert again == history
    assert again.to_json()["keys"][0]["retired_at"] == "2023-11-14T22:13:20.000+00:00"
    assert history.check_batch(old, "m", 2).ok  # batch 3, the last the old key signed
    late = history.check_batch(old, "m", 3)
    assert not late.ok and "after its retirement" in late.detail
    assert not history.check_batch(old, "other", 0).ok  # no batches of that channel
    assert history.check_batch(new, "m", 99).ok
    stranger = _cert(tmp_path, "gw-3")
    assert "not in the gateway's key history" in history.check_batch(stranger, "m", 0).detail


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        {"format": "other/1", "keys": []},
        {"format": "anchorline.gateway-keys/1"},
        {"format": "anchorline.gateway-keys/1", "keys": [{"msp_id": "Org1MSP"}]},
        {
            "format": "anchorline.gateway-keys/1",
            "keys": [{"certificate": "junk", "msp_id": "x", "valid_from_ms": 0}],
        },
    ],
)
def test_malformed_history_is_refused(doc: object) -> None:
    with pytest.raises(KeyHistoryError):
        KeyHistory.from_json(doc if isinstance(doc, str) else json.dumps(doc))
