"""The connection profile round-trips through JSON."""

from __future__ import annotations

import json
from pathlib import Path

from network.layout import Layout
from network.profile import NetworkProfile, build_profile
from network.topology import build_topology


def test_profile_round_trip(tmp_path: Path) -> None:
    topology = build_topology(7100)
    profile = build_profile(Layout(tmp_path), topology)
    path = tmp_path / "profile.json"
    profile.save(path)
    body = json.loads(path.read_text())
    assert body["channel"] == "anchorline"
    loaded = NetworkProfile.load(path)
    assert loaded == profile
    org1 = loaded.org("Org1MSP")
    assert org1.name == "Org1"
    assert org1.peer_address == topology.peer_of("Org1").address
    assert org1.peer_tls_ca == org1.msp_ca_certs[0]
    assert org1.crl_path == tmp_path / "orgs" / "org1" / "crl.pem"
    assert org1.ca_url == f"https://127.0.0.1:{topology.org('Org1').ca.port}"
    assert [o.address for o in loaded.orderers] == [o.address for o in topology.orderers]
