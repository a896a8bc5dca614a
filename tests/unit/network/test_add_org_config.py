"""Adding an org to the channel configuration, on real blocks made by configtxgen.

No network: the orgs' CA certificates and the orderers' TLS certificates are made
here with ``cryptography``; configtxgen (from the Fabric install) builds the
3-org configuration of ``network up`` and the 4-org one ``network add-org`` takes
the new group and policies from.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import configtx_pb2, policies_pb2
from fabric_protos.peer import configuration_pb2

from gateway.config import load_settings
from network import ca as fabric_ca
from network.channel import (
    application_orgs,
    org_wide_policies,
    signature_principals,
    with_added_org,
    with_revocation_list,
)
from network.configtx import configuration_for
from network.errors import ChannelError, FabricNotFound
from network.install import FabricInstall, find_fabric
from network.layout import Layout
from network.topology import Topology, build_topology

BASE = 7100


@pytest.fixture(scope="module")
def install() -> FabricInstall:
    try:
        return find_fabric(load_settings().fabric_home, "/usr/bin:/bin")
    except FabricNotFound as exc:
        pytest.skip(f"configtxgen is needed to build real config blocks: {exc.message}")


def _cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _crypto(layout: Layout, topology: Topology) -> None:
    """What configtxgen reads: each org's MSP folder, each orderer's TLS certificate."""
    for org in topology.orgs:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = layout.ca_cert(org.slug)
        if cert.exists():
            continue
        cert.parent.mkdir(parents=True, exist_ok=True)
        cert.write_bytes(_cert(org.ca.name, key))
        fabric_ca.write_org_msp(layout, org)
        if org.name == topology.orderer_org.name:
            issuer = x509.load_pem_x509_certificate(cert.read_bytes()).subject
            for o in topology.orderers:
                tls = layout.node_identity(org.slug, o.name) / "tls"
                tls.mkdir(parents=True, exist_ok=True)
                node_key = ec.generate_private_key(ec.SECP256R1())
                (tls / "server.crt").write_bytes(_cert(o.name, node_key, issuer))


@pytest.fixture(scope="module")
def configs(
    install: FabricInstall, tmp_path_factory: pytest.TempPathFactory
) -> tuple[configtx_pb2.Config, configtx_pb2.Config]:
    """(the 3-org configuration of `up`, the 4-org one made for Org4), same crypto."""
    layout = Layout(tmp_path_factory.mktemp("network"))
    made = []
    for topology in (build_topology(BASE), build_topology(BASE, added_orgs=["Org4"])):
        _crypto(layout, topology)
        folder = layout.root / f"configtx-{len(topology.peer_orgs)}"
        folder.mkdir()
        made.append(configuration_for(install, layout, topology, 100, 100, "/usr/bin:/bin", folder))
    return made[0], made[1]


def _rule(config: configtx_pb2.Config, path: str) -> policies_pb2.SignaturePolicy:
    policy = org_wide_policies(config)[path]
    return policies_pb2.SignaturePolicyEnvelope.FromString(policy.value).rule


def test_the_org_wide_policies_are_the_application_signature_policies(
    configs: tuple[configtx_pb2.Config, configtx_pb2.Config],
) -> None:
    three, _ = configs
    found = org_wide_policies(three)
    assert sorted(found) == [
        "Application/Endorsement",
        "Application/LifecycleEndorsement",
        "Application/Readers",
        "Application/Writers",
    ]
    assert signature_principals(found["Application/Endorsement"]) == [
        "Org1MSP.peer",
        "Org2MSP.peer",
        "Org3MSP.peer",
    ]
    assert _rule(three, "Application/Endorsement").n_out_of.n == 2


def test_adding_org4_adds_its_group_and_rewrites_every_org_wide_policy(
    configs: tuple[configtx_pb2.Config, configtx_pb2.Config],
) -> None:
    three, four = configs
    grown = with_added_org(three, four, "Org4MSP")
    assert application_orgs(grown) == ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]
    assert application_orgs(three) == ["Org1MSP", "Org2MSP", "Org3MSP"]  # untouched
    policies = org_wide_policies(grown)
    assert sorted(policies) == sorted(org_wide_policies(three))
    for path, policy in policies.items():
        msps = {p.split(".")[0] for p in signature_principals(policy)}
        assert msps == {"Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"}, path
    assert signature_principals(policies["Application/Writers"])[-2:] == [
        "Org4MSP.admin",
        "Org4MSP.client",
    ]
    # Majority of four: no two orgs write an anchor alone.
    assert _rule(grown, "Application/Endorsement").n_out_of.n == 3
    assert _rule(grown, "Application/LifecycleEndorsement").n_out_of.n == 3
    assert _rule(grown, "Application/Readers").n_out_of.n == 1
    app = grown.channel_group.groups["Application"]
    # The new org's own policies and its anchor peer come with its group.
    org4 = app.groups["Org4MSP"]
    assert signature_principals(org4.policies["Admins"].policy) == ["Org4MSP.admin"]
    anchors = configuration_pb2.AnchorPeers.FromString(org4.values["AnchorPeers"].value)
    peer = build_topology(BASE, added_orgs=["Org4"]).peer_of("Org4")
    assert [(a.host, a.port) for a in anchors.anchor_peers] == [("127.0.0.1", peer.port)]
    # Everything else is the live configuration's: the implicit MAJORITY Admins, and
    # the orderer section.
    assert app.policies["Admins"] == three.channel_group.groups["Application"].policies["Admins"]
    assert grown.channel_group.groups["Orderer"] == three.channel_group.groups["Orderer"]


def test_the_existing_orgs_groups_keep_their_live_state(
    configs: tuple[configtx_pb2.Config, configtx_pb2.Config],
) -> None:
    three, four = configs
    revoked = with_revocation_list(three, "Org2MSP", [b"-----BEGIN X509 CRL-----"])
    grown = with_added_org(revoked, four, "Org4MSP")
    for msp_id in ("Org1MSP", "Org2MSP", "Org3MSP"):
        assert (
            grown.channel_group.groups["Application"].groups[msp_id]
            == revoked.channel_group.groups["Application"].groups[msp_id]
        )


def test_an_org_already_there_or_missing_from_the_target_is_refused(
    configs: tuple[configtx_pb2.Config, configtx_pb2.Config],
) -> None:
    three, four = configs
    with pytest.raises(ChannelError, match="already an application org"):
        with_added_org(four, four, "Org4MSP")
    with pytest.raises(ChannelError, match="lacks Org5MSP"):
        with_added_org(three, four, "Org5MSP")
    # A target whose policies forgot the new org would leave it unable to endorse.
    stale = configtx_pb2.Config()
    stale.CopyFrom(four)
    endorsement = stale.channel_group.groups["Application"].policies["Endorsement"]
    endorsement.policy.CopyFrom(
        three.channel_group.groups["Application"].policies["Endorsement"].policy
    )
    with pytest.raises(ChannelError, match="Application/Endorsement"):
        with_added_org(three, stale, "Org4MSP")
