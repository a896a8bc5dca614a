"""Topology and ports: fixed order from the base port, loopback only, 2024 avoided."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from network.topology import HOST, MAX_CHAINCODES, build_topology


def test_default_topology_shape() -> None:
    t = build_topology()
    assert [o.name for o in t.orgs] == ["OrdererOrg", "Org1", "Org2", "Org3"]
    assert [o.msp_id for o in t.peer_orgs] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert [o.name for o in t.orderers] == ["orderer1", "orderer2", "orderer3"]
    assert [p.name for p in t.peers] == ["peer0.org1", "peer0.org2", "peer0.org3"]
    assert [c.name for c in t.cas] == ["ca.ordererorg", "ca.org1", "ca.org2", "ca.org3"]
    assert HOST == "127.0.0.1"
    assert t.peer_of("Org2").address == f"127.0.0.1:{t.peers[1].port}"


def test_ports_are_unique_and_start_at_base() -> None:
    t = build_topology(7100)
    ports = [p for _, p in t.all_ports()]
    assert len(ports) == len(set(ports))
    assert min(ports) == 7100
    assert t.cas[0].port == 7100
    cc = list(t.chaincode_ports)
    assert len(cc) == MAX_CHAINCODES * 3
    assert not set(cc) & set(ports)
    assert min(cc) > max(ports)


def test_ports_are_deterministic_and_shift_with_base() -> None:
    a, b = build_topology(7100), build_topology(7300)
    assert [p + 200 for _, p in a.all_ports()] == [p for _, p in b.all_ports()]
    assert build_topology(7100) == a


def test_reserved_port_2024_is_skipped() -> None:
    t = build_topology(2000)
    ports = [p for _, p in t.all_ports()] + list(t.chaincode_ports)
    assert 2024 not in ports
    assert 2025 in ports


def test_chaincode_port_per_chaincode_and_peer() -> None:
    t = build_topology()
    assert t.chaincode_port(0, 0) == t.chaincode_base
    assert t.chaincode_port(1, 2) == t.chaincode_ports[5]
    with pytest.raises(ConfigError):
        t.chaincode_port(MAX_CHAINCODES, 0)


@pytest.mark.parametrize("base", [80, 65500, 70000])
def test_bad_base_port(base: int) -> None:
    with pytest.raises(ConfigError, match="base_port"):
        build_topology(base)


def test_bad_channel_name() -> None:
    with pytest.raises(ConfigError, match="channel"):
        build_topology(7100, "Bad_Channel")


def test_org_lookup_is_case_insensitive() -> None:
    t = build_topology()
    assert t.org("org3").msp_id == "Org3MSP"
    with pytest.raises(KeyError):
        t.org("Org4")


def test_an_added_org_moves_no_port_and_gets_its_own() -> None:
    before, after = build_topology(7100), build_topology(7100, added_orgs=["Org4"])
    assert dict(before.all_ports()).items() <= dict(after.all_ports()).items()
    for cc in range(MAX_CHAINCODES):
        for peer in range(len(before.peers)):
            assert before.chaincode_port(cc, peer) == after.chaincode_port(cc, peer)
    org4 = after.org("Org4")
    assert org4.msp_id == "Org4MSP" and after.added_orgs == (org4,)
    assert after.peer_of("Org4").name == "peer0.org4"
    ports = [p for _, p in after.all_ports()] + list(after.chaincode_ports)
    assert len(ports) == len(set(ports))
    assert min(set(ports) - {p for _, p in before.all_ports()} - set(before.chaincode_ports)) > max(
        [p for _, p in before.all_ports()] + list(before.chaincode_ports)
    )
    # The test sessions give each network a block of 100 ports: Org4 still fits.
    assert max(ports) < 7100 + 100
    org4_cc = {after.chaincode_port(cc, 3) for cc in range(MAX_CHAINCODES)}
    assert len(org4_cc) == MAX_CHAINCODES and not org4_cc & set(before.chaincode_ports)


@pytest.mark.parametrize("name", ["org4", "Org_4", "", "Org4MSP" + "x" * 30, "4Org"])
def test_bad_added_org_names(name: str) -> None:
    with pytest.raises(ConfigError, match="org name"):
        build_topology(7100, added_orgs=[name])


@pytest.mark.parametrize("added", [["Org1"], ["ORG2"], ["Org4", "Org4"], ["OrdererOrg"]])
def test_an_org_cannot_be_added_twice(added: list[str]) -> None:
    with pytest.raises(ConfigError, match="already part"):
        build_topology(7100, added_orgs=added)
