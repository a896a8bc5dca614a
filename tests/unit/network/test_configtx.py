"""configtx generation: Raft consenters, policies, anchor peers, orderer endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from network.configtx import PROFILE, configtx_document, write_configtx
from network.errors import ChannelError
from network.layout import Layout
from network.topology import build_topology


def _profile(tmp_path: Path, batch: int = 100, tick: int = 100) -> dict:
    doc = configtx_document(Layout(tmp_path), build_topology(7100), batch, tick)
    return doc["Profiles"][PROFILE]


def test_orderer_section(tmp_path: Path) -> None:
    orderer = _profile(tmp_path, batch=150, tick=80)["Orderer"]
    assert orderer["OrdererType"] == "etcdraft"
    assert orderer["BatchTimeout"] == "150ms"
    raft = orderer["EtcdRaft"]
    assert raft["Options"]["TickInterval"] == "80ms"
    assert raft["Options"]["ElectionTick"] > raft["Options"]["HeartbeatTick"]
    t = build_topology(7100)
    assert [(c["Host"], c["Port"]) for c in raft["Consenters"]] == [
        ("127.0.0.1", o.port) for o in t.orderers
    ]
    for consenter in raft["Consenters"]:
        assert consenter["ClientTLSCert"].endswith("/tls/server.crt")
        assert str(tmp_path) in consenter["ServerTLSCert"]
    org = orderer["Organizations"][0]
    assert org["ID"] == "OrdererOrgMSP"
    assert org["OrdererEndpoints"] == [o.address for o in t.orderers]


def test_application_orgs_with_anchor_peers_and_majority(tmp_path: Path) -> None:
    app = _profile(tmp_path)["Application"]
    t = build_topology(7100)
    assert [o["ID"] for o in app["Organizations"]] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    for org, peer in zip(app["Organizations"], t.peers, strict=True):
        assert org["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": peer.port}]
        assert org["Policies"]["Endorsement"]["Rule"] == f"OR('{org['ID']}.peer')"
        assert org["MSPDir"].endswith(f"orgs/{org['ID'][:-3].lower()}/msp")
    majority = {
        "Type": "Signature",
        "Rule": "OutOf(2, 'Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')",
    }
    assert app["Policies"]["Endorsement"] == majority
    assert app["Policies"]["LifecycleEndorsement"] == majority
    assert app["Capabilities"] == {"V2_5": True}


def test_application_readers_and_writers_are_the_union_of_the_orgs(tmp_path: Path) -> None:
    # One signature policy admitting whom the orgs' own policies admit: each
    # signature is verified once, not once per org as under "ANY Readers".
    app = _profile(tmp_path)["Application"]
    for name in ("Readers", "Writers"):
        policy = app["Policies"][name]
        assert policy["Type"] == "Signature"
        union = set()
        for org in app["Organizations"]:
            rule = org["Policies"][name]["Rule"]
            union |= {p.strip(" '") for p in rule[len("OR(") : -1].split(",")}
        admitted = {p.strip(" '") for p in policy["Rule"][len("OR(") : -1].split(",")}
        assert admitted == union
    assert app["Policies"]["Admins"] == {"Type": "ImplicitMeta", "Rule": "MAJORITY Admins"}


def test_written_file_is_yaml_and_deterministic(tmp_path: Path) -> None:
    layout, topology = Layout(tmp_path), build_topology(7100)
    first = write_configtx(layout, topology, 100, 100).read_text()
    second = write_configtx(layout, topology, 100, 100).read_text()
    assert first == second
    assert PROFILE in yaml.safe_load(first)["Profiles"]


def test_non_positive_timings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ChannelError):
        _profile(tmp_path, batch=0)
