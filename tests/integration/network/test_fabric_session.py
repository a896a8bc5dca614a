"""Against the session network: chaincode behaviour, identities, CRL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from network.errors import IdentityExists, UnknownOrg
from network.probe import probe_for
from network.profile import NetworkProfile
from tests.conftest import FabricSession

pytestmark = pytest.mark.fabric

ROLE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
Enroll = Callable[[NetworkProfile, str, str, str], Path]


def test_session_network_came_up_cold(fabric_session: FabricSession) -> None:
    assert not fabric_session.up.already_running
    assert len(fabric_session.up.started) == 10
    statuses = fabric_session.network.status()
    assert all(s.pid is not None for s in statuses if s.kind != "chaincode")
    assert any(s.leader for s in statuses if s.kind == "orderer")


def test_profile_is_loadable_and_complete(fabric_network: NetworkProfile) -> None:
    assert fabric_network.network_dir is not None
    loaded = NetworkProfile.load(fabric_network.network_dir / "profile.json")
    # As the first `up` wrote it, plus any org added since (test_fabric_add_org.py).
    assert loaded.orgs[:3] == fabric_network.orgs and loaded.orderers == fabric_network.orderers
    assert [o.msp_id for o in loaded.orgs][:3] == ["Org1MSP", "Org2MSP", "Org3MSP"]
    assert len(loaded.orderers) == 3
    for org in loaded.orgs:
        assert org.peer_tls_ca.is_file() and org.admin_msp_dir.is_dir()
        assert org.crl_path is not None and org.crl_path.is_file()
        assert all(p.is_file() for p in org.msp_ca_certs)


def test_testcc_put_get_fail_creator(fabric_network: NetworkProfile, testcc: str) -> None:
    with probe_for(fabric_network, "Org2") as org2:
        committed = org2.submit(testcc, ["Put", "k-session", "v1"])
        assert len(set(committed.endorsing_msps)) >= 2
        assert org2.evaluate(testcc, ["Get", "k-session"]) == b"v1"
        with pytest.raises(grpc.RpcError) as failed:
            org2.evaluate(testcc, ["Fail", "deliberate failure"])
        assert "deliberate failure" in (failed.value.details() or "")
        with pytest.raises(grpc.RpcError) as missing:
            org2.evaluate(testcc, ["Get", "never-written"])
        assert "not_found" in (missing.value.details() or "")
        creator = json.loads(org2.evaluate(testcc, ["Creator"]))
        assert creator == {"msp_id": "Org2MSP", "fingerprint": org2.signer.fingerprint}


def test_put_with_event_reaches_a_client(fabric_network: NetworkProfile, testcc: str) -> None:
    with probe_for(fabric_network, "Org1") as org1:
        committed = org1.submit(testcc, ["PutWithEvent", "k-event", "v-event"])
    with probe_for(fabric_network, "Org3") as org3:
        events = org3.chaincode_events(testcc, committed.block, timeout=10)
        block, event = next((b, e) for b, e in events if e.tx_id == committed.tx_id)
    assert block == committed.block
    assert event.event_name == "put"
    assert json.loads(event.payload) == {"key": "k-event", "value": "v-event"}


def test_deploy_again_is_warm_and_keeps_package(fabric_session: FabricSession, testcc: str) -> None:
    from tests.conftest import TESTCC_PATH

    again = fabric_session.network.deploy(TESTCC_PATH, testcc)
    assert again.warm and again.sequence == 1


def _cert(msp: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((msp / "signcerts" / "cert.pem").read_bytes())


def test_enrolled_member_has_role_and_chains_to_org_ca(
    fabric_network: NetworkProfile, enroll_identity: Enroll, testcc: str
) -> None:
    msp = enroll_identity(fabric_network, "Org1", "member-alice", "member")
    for sub in ("signcerts", "keystore", "cacerts", "tlscacerts"):
        assert any((msp / sub).iterdir()), sub
    assert "Enable: true" in (msp / "config.yaml").read_text()
    cert = _cert(msp)
    attrs = json.loads(cert.extensions.get_extension_for_oid(ROLE_OID).value.value)
    assert attrs["attrs"]["anchorline.role"] == "member"
    assert attrs["attrs"]["hf.EnrollmentID"] == "member-alice"
    org_ca = x509.load_pem_x509_certificate(fabric_network.org("Org1").msp_ca_certs[0].read_bytes())
    cert.verify_directly_issued_by(org_ca)  # raises if it does not chain
    # The member can transact with its own identity, and the chaincode sees it.
    with probe_for(fabric_network, "Org1", msp) as as_alice:
        creator = json.loads(as_alice.evaluate(testcc, ["Creator"]))
    der = cert.public_bytes(serialization.Encoding.DER)
    assert creator == {"msp_id": "Org1MSP", "fingerprint": hashlib.sha256(der).hexdigest()}


def test_auditor_role_attribute(fabric_network: NetworkProfile, enroll_identity: Enroll) -> None:
    cert = _cert(enroll_identity(fabric_network, "Org3", "auditor-carol", "auditor"))
    attrs = json.loads(cert.extensions.get_extension_for_oid(ROLE_OID).value.value)
    assert attrs["attrs"]["anchorline.role"] == "auditor"


def test_revoked_member_is_on_the_crl(
    fabric_session: FabricSession, fabric_network: NetworkProfile, enroll_identity: Enroll
) -> None:
    cert = _cert(enroll_identity(fabric_network, "Org2", "member-bob", "member"))
    crl_path = fabric_session.network.revoke("Org2", "member-bob", channel=False)
    assert crl_path == fabric_network.org("Org2").crl_path
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    org_ca = x509.load_pem_x509_certificate(fabric_network.org("Org2").msp_ca_certs[0].read_bytes())
    public_key = org_ca.public_key()
    assert crl.is_signature_valid(public_key)  # type: ignore[arg-type]


def test_duplicate_and_unknown_org_are_refused(
    fabric_network: NetworkProfile, enroll_identity: Enroll
) -> None:
    enroll_identity(fabric_network, "Org1", "member-dup", "member")
    with pytest.raises(IdentityExists, match="already registered"):
        enroll_identity(fabric_network, "Org1", "member-dup", "member")
    with pytest.raises(UnknownOrg, match="Org9"):
        enroll_identity(fabric_network, "Org9", "someone", "member")


def test_revoke_into_the_channel_makes_peers_refuse(
    fabric_session: FabricSession,
    fabric_network: NetworkProfile,
    enroll_identity: Enroll,
    testcc: str,
) -> None:
    msp = enroll_identity(fabric_network, "Org3", "member-dave", "member")
    with probe_for(fabric_network, "Org3", msp) as as_dave:
        as_dave.submit(testcc, ["Put", "k-dave", "before"])
        fabric_session.network.revoke("Org3", "member-dave", channel=True)
        with pytest.raises(grpc.RpcError) as refused:
            as_dave.evaluate(testcc, ["Get", "k-dave"])
        assert refused.value.code() in (
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.PERMISSION_DENIED,
        ), refused.value.details()
    # Everyone else carries on.
    with probe_for(fabric_network, "Org3") as admin:
        assert admin.evaluate(testcc, ["Get", "k-dave"]) == b"before"
        admin.submit(testcc, ["Put", "k-after-crl", "ok"])


def test_changed_chaincode_is_upgraded_to_a_new_sequence(
    fabric_session: FabricSession, fabric_network: NetworkProfile, tmp_path: Path
) -> None:
    from tests.conftest import TESTCC_PATH

    package = tmp_path / "src" / "upgradecc"
    package.mkdir(parents=True)
    contract = (TESTCC_PATH / "contract.py").read_text()
    (package / "contract.py").write_text(contract)
    (package / "__init__.py").write_text("from upgradecc.contract import CONTRACTS\n")
    network = fabric_session.network
    first = network.deploy(package, "upgradecc")
    with probe_for(fabric_network, "Org1") as org1:
        org1.submit("upgradecc", ["Put", "u", "1"])
    (package / "contract.py").write_text(contract + "\n# changed\n")
    second = network.deploy(package, "upgradecc")
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.package_id != second.package_id and not second.warm
    with probe_for(fabric_network, "Org2") as org2:
        assert org2.evaluate("upgradecc", ["Get", "u"]) == b"1"  # state survives the upgrade
        org2.submit("upgradecc", ["Put", "u", "2"])
