"""A standard Fabric connection profile (the SDKs' YAML/JSON) read as our NetworkProfile:
inline and file TLS roots, TLS name overrides, MSP folders, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.identity.ca import EmbeddedCA
from gateway.ledger.connection_profile import (
    from_connection_profile,
    load_profile,
    to_connection_profile,
)


def _doc(ca_pem: str, tls_file: Path) -> dict[str, object]:
    return {
        "name": "someone-elses-consortium",
        "version": "1.0.0",
        "channels": {"trade": {"orderers": ["orderer.example.com"], "peers": {}}},
        "organizations": {
            "Org1": {
                "mspid": "Org1MSP",
                "peers": ["peer0.org1.example.com"],
                "certificateAuthorities": ["ca.org1.example.com"],
                "mspDir": "org1/msp",
            },
            "Org2": {"mspid": "Org2MSP", "peers": ["peer0.org2.example.com"]},
            "OrdererOrg": {"mspid": "OrdererMSP"},
        },
        "peers": {
            "peer0.org1.example.com": {
                "url": "grpcs://localhost:7051",
                "tlsCACerts": {"pem": ca_pem},
                "grpcOptions": {"ssl-target-name-override": "peer0.org1.example.com"},
            },
            "peer0.org2.example.com": {
                "url": "grpcs://10.0.0.2:9051",
                "tlsCACerts": {"path": str(tls_file)},
            },
        },
        "orderers": {
            "orderer.example.com": {
                "url": "grpcs://localhost:7050",
                "tlsCACerts": {"pem": [ca_pem]},
            }
        },
        "certificateAuthorities": {
            "ca.org1.example.com": {"url": "https://localhost:7054", "tlsCACerts": {"pem": ca_pem}}
        },
    }


@pytest.fixture
def ca(tmp_path: Path) -> EmbeddedCA:
    ca = EmbeddedCA(tmp_path / "ca")
    ca.create_org("Org1")
    ca.create_org("Org2")
    return ca


def test_a_yaml_connection_profile_reads_as_a_network_profile(
    tmp_path: Path, ca: EmbeddedCA
) -> None:
    folder = tmp_path / "consortium"
    (folder / "org1").mkdir(parents=True)
    (folder / "org1" / "msp").symlink_to(ca.org_msp_dir("Org1"))
    ca_pem = (ca.org_msp_dir("Org1") / "cacerts" / "ca-cert.pem").read_text()
    tls_file = ca.org_msp_dir("Org2") / "tlscacerts" / "ca-cert.pem"
    path = folder / "connection.yaml"
    path.write_text(yaml.safe_dump(_doc(ca_pem, tls_file)))
    profile = load_profile(path)
    assert profile.channel == "trade"
    assert [o.msp_id for o in profile.orgs] == ["Org1MSP", "Org2MSP"]  # no peer: skipped
    org1, org2 = profile.orgs
    assert org1.peer_address == "localhost:7051"
    assert org1.peer_host_override == "peer0.org1.example.com"
    assert org1.peer_tls_ca.read_text().strip() == ca_pem.strip()  # inline PEM, to a file
    assert org1.msp_dir == folder / "org1" / "msp" and len(org1.msp_ca_certs) == 1
    assert org1.ca_url == "https://localhost:7054"
    assert org2.peer_address == "10.0.0.2:9051" and org2.peer_host_override == "10.0.0.2"
    assert org2.peer_tls_ca == tls_file and org2.msp_dir is None
    assert [o.address for o in profile.orderers] == ["localhost:7050"]
    # MSP folders the profile does not carry come from the caller (trust_msp_dirs).
    again = from_connection_profile(path, msp_dirs={"Org2MSP": ca.org_msp_dir("Org2")})
    assert again.orgs[1].msp_dir == ca.org_msp_dir("Org2")


def test_our_profile_exported_and_read_back_keeps_what_a_client_needs(
    tmp_path: Path, ca: EmbeddedCA
) -> None:
    ca_pem = (ca.org_msp_dir("Org1") / "cacerts" / "ca-cert.pem").read_text()
    tls_file = ca.org_msp_dir("Org2") / "tlscacerts" / "ca-cert.pem"
    first_path = tmp_path / "first.json"
    doc = _doc(ca_pem, tls_file)
    doc["organizations"]["Org1"]["mspDir"] = str(ca.org_msp_dir("Org1"))  # type: ignore[index]
    first_path.write_text(json.dumps(doc))
    first = load_profile(first_path)
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(to_connection_profile(first)))
    back = load_profile(exported)
    assert back.channel == first.channel
    for a, b in zip(first.orgs, back.orgs, strict=True):
        assert (a.msp_id, a.peer_address, a.peer_host_override, a.msp_dir) == (
            b.msp_id,
            b.peer_address,
            b.peer_host_override,
            b.msp_dir,
        )
        assert a.peer_tls_ca.read_bytes().strip() == b.peer_tls_ca.read_bytes().strip()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["organizations"]["Org1"].pop("mspid"), "has no mspid"),
        (lambda d: d["peers"]["peer0.org1.example.com"].update(url="grpc://h:1"), "plain text"),
        (lambda d: d["peers"]["peer0.org1.example.com"].update(url="grpcs://h"), "no port"),
        (lambda d: d["peers"]["peer0.org1.example.com"].pop("tlsCACerts"), "no tlsCACerts"),
        (lambda d: d.pop("channels"), "no channels"),
    ],
)
def test_what_is_missing_is_named(
    tmp_path: Path, ca: EmbeddedCA, change: object, message: str
) -> None:
    ca_pem = (ca.org_msp_dir("Org1") / "cacerts" / "ca-cert.pem").read_text()
    doc = _doc(ca_pem, ca.org_msp_dir("Org2") / "tlscacerts" / "ca-cert.pem")
    change(doc)  # type: ignore[operator]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=message):
        load_profile(path)
