"""The built-in CA: MSP layout, Fabric CA attribute shape, NodeOUs, revocation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.identity import certificates as certs
from gateway.identity.ca import EmbeddedCA
from gateway.identity.errors import (
    CaError,
    CertificateExpired,
    CertificateRevoked,
    IdentityAlreadyEnrolled,
    IdentityNotFound,
)


@pytest.fixture
def ca(tmp_path: Path) -> EmbeddedCA:
    return EmbeddedCA(tmp_path / "ca")


def _cert(msp: Path) -> x509.Certificate:
    return certs.load_certificate((msp / "signcerts" / "cert.pem").read_bytes())


def test_org_msp_layout_and_node_ous(ca: EmbeddedCA) -> None:
    msp = ca.create_org("Org1MSP")
    assert msp == ca.org_msp_dir("Org1")
    assert ca.msp_id("Org1") == "Org1MSP"
    assert ca.orgs() == ["Org1"]
    root = certs.load_certificate((msp / "cacerts" / "ca-cert.pem").read_bytes())
    assert root.subject == root.issuer
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (msp / "tlscacerts" / "ca-cert.pem").read_bytes() == (
        msp / "cacerts" / "ca-cert.pem"
    ).read_bytes()
    node_ous = yaml.safe_load((msp / "config.yaml").read_text())["NodeOUs"]
    assert node_ous["Enable"] is True
    assert {
        node_ous[k]["OrganizationalUnitIdentifier"]
        for k in (
            "ClientOUIdentifier",
            "PeerOUIdentifier",
            "AdminOUIdentifier",
            "OrdererOUIdentifier",
        )
    } == {"client", "peer", "admin", "orderer"}
    assert node_ous["ClientOUIdentifier"]["Certificate"] == "cacerts/ca-cert.pem"
    # An empty, signed CRL exists from the start.
    crl = x509.load_pem_x509_crl((msp / "crls" / "crl.pem").read_bytes())
    assert len(list(crl)) == 0
    # Creating again keeps the same CA.
    ca.create_org("Org1")
    assert certs.load_certificate((msp / "cacerts" / "ca-cert.pem").read_bytes()) == root


@pytest.mark.parametrize(
    ("role", "ou", "hf_type", "sub"),
    [
        ("member", "client", "client", "users"),
        ("auditor", "client", "client", "users"),
        ("admin", "admin", "admin", "users"),
        ("peer", "peer", "peer", "peers"),
    ],
)
def test_enrolled_identity_matches_fabric_ca(
    ca: EmbeddedCA, role: str, ou: str, hf_type: str, sub: str
) -> None:
    msp = ca.enroll("Org2", "id-1", role)
    assert msp == ca.org_dir("Org2") / sub / "id-1" / "msp"
    assert ca.identity_dir("Org2", "id-1") == msp
    cert = _cert(msp)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == ou
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "id-1"
    ext = cert.extensions.get_extension_for_oid(certs.ATTRIBUTES_OID)
    assert not ext.critical
    doc = json.loads(ext.value.value)  # type: ignore[attr-defined]
    expected = {"hf.Affiliation": "", "hf.EnrollmentID": "id-1", "hf.Type": hf_type}
    if role != "peer":
        expected["anchorline.role"] = role
    assert doc == {"attrs": expected}
    assert certs.role(cert) == (None if role == "peer" else role)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    # The private key in keystore/ is the certificate's key and signs.
    (key_file,) = (msp / "keystore").iterdir()
    assert key_file.name.endswith("_sk")
    assert key_file.stat().st_mode & 0o077 == 0
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sig = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    cert.public_key().verify(sig, b"data", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]
    # And the org MSP trusts it.
    assert ca.trust_store().verify(cert).msp_id == "Org2MSP"
    assert (msp / "config.yaml").is_file()
    assert (msp / "cacerts" / "ca-cert.pem").is_file()


def test_enroll_refuses_duplicates_and_bad_input(ca: EmbeddedCA) -> None:
    ca.enroll("Org1", "alice", "member")
    with pytest.raises(IdentityAlreadyEnrolled, match="already enrolled"):
        ca.enroll("Org1", "alice", "auditor")
    with pytest.raises(CaError, match="role"):
        ca.enroll("Org1", "bob", "superuser")
    with pytest.raises(CaError, match="name"):
        ca.enroll("Org1", "../evil", "member")
    with pytest.raises(CaError, match="org name"):
        ca.enroll("Org/1", "bob", "member")
    with pytest.raises(IdentityNotFound):
        ca.identity_dir("Org1", "nobody")


def test_revoke_writes_a_signed_crl_and_store_refuses(ca: EmbeddedCA) -> None:
    alice = ca.enroll("Org1", "alice", "member")
    bob = ca.enroll("Org1", "bob", "member")
    store = ca.trust_store()
    crl_path = ca.revoke("Org1", "alice")
    assert crl_path == ca.org_msp_dir("Org1") / "crls" / "crl.pem"
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    root = certs.load_certificate((ca.org_msp_dir("Org1") / "cacerts" / "ca-cert.pem").read_bytes())
    assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [_cert(alice).serial_number]
    with pytest.raises(CertificateRevoked):
        store.verify(_cert(alice))
    assert store.verify(_cert(bob)).enrollment_id == "bob"
    # Revoking twice is harmless; revoking an unknown name is an error.
    ca.revoke("Org1", "alice")
    assert len(list(x509.load_pem_x509_crl(crl_path.read_bytes()))) == 1
    with pytest.raises(IdentityNotFound):
        ca.revoke("Org1", "nobody")


def test_validity_window_can_be_chosen(ca: EmbeddedCA) -> None:
    now = dt.datetime.now(dt.UTC)
    msp = ca.enroll(
        "Org1",
        "old",
        "member",
        valid_from=now - dt.timedelta(days=3),
        valid_until=now - dt.timedelta(days=1),
    )
    with pytest.raises(CertificateExpired):
        ca.trust_store().verify(_cert(msp))


def test_separate_instances_share_state(ca: EmbeddedCA) -> None:
    ca.enroll("Org1", "alice", "member")
    other = EmbeddedCA(ca.root)
    with pytest.raises(IdentityAlreadyEnrolled):
        other.enroll("Org1", "alice", "member")
    assert other.orgs() == ["Org1"]


def test_renewal_keeps_the_old_certificate_until_it_is_revoked(tmp_path: Path) -> None:
    from gateway.identity.certificates import TrustStore
    from gateway.identity.errors import CertificateRevoked
    from gateway.identity.msp import load_msp

    ca = EmbeddedCA(tmp_path / "ca")
    first = load_msp(ca.enroll("Org1", "erin", "member"), "Org1MSP", require_key=True)
    renewed_dir = ca.reenroll("Org1", "erin")
    renewed = load_msp(renewed_dir, "Org1MSP", require_key=True)  # key matches the new cert
    assert renewed.identity.fingerprint != first.identity.fingerprint
    assert len(list((renewed_dir / "keystore").iterdir())) == 1

    def check(cert: bytes) -> str:
        return TrustStore.from_msp_dirs({"Org1MSP": ca.org_msp_dir("Org1")}).verify(cert).msp_id

    assert check(first.identity.certificate_pem) == check(renewed.identity.certificate_pem)
    old_serial = format(first.identity.certificate.serial_number, "x")
    ca.revoke("Org1", "erin", serial=old_serial)
    with pytest.raises(CertificateRevoked):
        check(first.identity.certificate_pem)
    assert check(renewed.identity.certificate_pem) == "Org1MSP"
    ca.revoke("Org1", "erin")
    with pytest.raises(CertificateRevoked):
        check(renewed.identity.certificate_pem)
