"""network/docker/compose.yaml, validated statically against the native topology."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from network.install import TESTED_FABRIC, TESTED_FABRIC_CA
from network.topology import build_topology

COMPOSE = Path(__file__).resolve().parents[3] / "network" / "docker" / "compose.yaml"


def _services() -> dict[str, Any]:
    """The Fabric network's services (the "scaleout" profile: test_compose_scaleout.py)."""
    doc = yaml.safe_load(COMPOSE.read_text())
    return {k: v for k, v in doc["services"].items() if "profiles" not in v}


def test_service_set_matches_topology() -> None:
    t = build_topology(7100)
    expected = {c.name for c in t.cas} | {o.name for o in t.orderers} | {p.name for p in t.peers}
    assert set(_services()) == expected


def test_images_are_pinned() -> None:
    for name, service in _services().items():
        image = service["image"]
        if name.startswith("ca."):
            assert image == f"hyperledger/fabric-ca:{TESTED_FABRIC_CA}"
        elif name.startswith("orderer"):
            assert image == f"hyperledger/fabric-orderer:{TESTED_FABRIC}"
        else:
            assert image == f"hyperledger/fabric-peer:{TESTED_FABRIC}"
        assert service["network_mode"] == "host"


def test_ports_and_msp_ids_match_topology() -> None:
    t = build_topology(7100)
    services = _services()
    for o in t.orderers:
        env = services[o.name]["environment"]
        assert env["ORDERER_GENERAL_LISTENADDRESS"] == "127.0.0.1"
        assert int(env["ORDERER_GENERAL_LISTENPORT"]) == o.port
        assert env["ORDERER_ADMIN_LISTENADDRESS"] == f"127.0.0.1:{o.admin_port}"
        assert env["ORDERER_OPERATIONS_LISTENADDRESS"] == f"127.0.0.1:{o.ops_port}"
        assert env["ORDERER_GENERAL_LOCALMSPID"] == t.orderer_org.msp_id
        assert env["ORDERER_GENERAL_BOOTSTRAPMETHOD"] == "none"
        assert env["ORDERER_CHANNELPARTICIPATION_ENABLED"] == "true"
    for p in t.peers:
        env = services[p.name]["environment"]
        assert env["CORE_PEER_ADDRESS"] == p.address
        assert env["CORE_PEER_GOSSIP_EXTERNALENDPOINT"] == p.address
        assert env["CORE_PEER_CHAINCODELISTENADDRESS"] == f"127.0.0.1:{p.chaincode_port}"
        assert env["CORE_OPERATIONS_LISTENADDRESS"] == f"127.0.0.1:{p.ops_port}"
        assert env["CORE_PEER_LOCALMSPID"] == t.org(p.org).msp_id
        assert env["CORE_PEER_TLS_ENABLED"] == "true"
    for ca in t.cas:
        service = services[ca.name]
        command = " ".join(service["command"])
        assert re.search(rf"--port {ca.port}\b", command)
        assert "--address 127.0.0.1" in command and "--tls.enabled" in command
        ops = service["environment"]["FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS"]
        assert ops == f"127.0.0.1:{ca.ops_port}"


def test_every_listener_is_loopback() -> None:
    text = COMPOSE.read_text()
    assert "0.0.0.0" not in text
    for service in _services().values():
        for key, value in service.get("environment", {}).items():
            if key.endswith(("LISTENADDRESS", "_ADDRESS")) and ":" in str(value):
                assert str(value).startswith("127.0.0.1:"), (key, value)
