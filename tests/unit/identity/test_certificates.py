"""Certificate parsing, Fabric CA attributes and TrustStore verification."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.identity import certificates as certs
from gateway.identity.ca import EmbeddedCA
from gateway.identity.errors import (
    BadCertificateChain,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateParseError,
    CertificateRejected,
    CertificateRevoked,
    MspFolderError,
    NoDigitalSignatureUsage,
    UnknownCertificateAuthority,
)

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _usage(*, sign: bool = True, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=not sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
    usage: x509.KeyUsage | None = None,
    with_usage: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = key or _key()
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if with_usage:
        builder = builder.add_extension(usage or _usage(ca=ca), critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _crl(
    issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, serials: list[int]
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - dt.timedelta(minutes=1))
        .next_update(NOW + dt.timedelta(days=1))
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - dt.timedelta(minutes=1))
            .build()
        )
    return builder.sign(key, hashes.SHA256())


@pytest.fixture
def root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return _issue("Root CA", None, ca=True)


@pytest.fixture
def store(root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> certs.TrustStore:
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0])
    return s


def _leaf(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], **kw: object
) -> x509.Certificate:
    cert, _ = _issue("alice", (root[0].subject, root[1]), **kw)  # type: ignore[arg-type]
    return cert


# -- parsing ---------------------------------------------------------------------------


def test_pem_and_der_give_the_same_certificate_and_fingerprint(root) -> None:
    cert = _leaf(root)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert certs.load_certificate(pem) == certs.load_certificate(der) == cert
    assert certs.load_certificate(pem.decode()) == cert
    import hashlib

    assert certs.fingerprint(cert) == hashlib.sha256(der).hexdigest()
    assert len(certs.fingerprint(cert)) == 64


def test_bundle_yields_every_certificate(root) -> None:
    a, b = _leaf(root), _leaf(root)
    bundle = a.public_bytes(serialization.Encoding.PEM) + b.public_bytes(serialization.Encoding.PEM)
    assert certs.load_certificates(bundle) == [a, b]


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_garbage_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(CertificateParseError) as info:
        certs.load_certificate(data)
    assert info.value.code == "AL1201"


def test_attributes_and_role_from_fabric_ca_extension(root) -> None:
    doc = {"attrs": {"anchorline.role": "auditor", "hf.EnrollmentID": "bob", "hf.Type": "client"}}
    ext = x509.UnrecognizedExtension(certs.ATTRIBUTES_OID, json.dumps(doc).encode())
    cert = _leaf(root, extensions=(ext,))
    assert certs.attributes(cert) == doc["attrs"]
    assert certs.role(cert) == "auditor"


def test_no_attribute_extension_means_no_role(root) -> None:
    cert = _leaf(root)
    assert certs.attributes(cert) == {}
    assert certs.role(cert) is None


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"attrs": 3}'])
def test_malformed_attribute_extension_is_a_parse_error(root, raw: bytes) -> None:
    cert = _leaf(root, extensions=(x509.UnrecognizedExtension(certs.ATTRIBUTES_OID, raw),))
    with pytest.raises(CertificateParseError):
        certs.attributes(cert)


# -- verification ----------------------------------------------------------------------


def test_valid_certificate_verifies(store, root) -> None:
    doc = {"attrs": {"anchorline.role": "member", "hf.EnrollmentID": "alice-1"}}
    cert = _leaf(
        root,
        extensions=(x509.UnrecognizedExtension(certs.ATTRIBUTES_OID, json.dumps(doc).encode()),),
    )
    ident = store.verify(cert.public_bytes(serialization.Encoding.PEM))
    assert ident.msp_id == "Org1MSP"
    assert ident.role == "member"
    assert ident.fingerprint == certs.fingerprint(cert)
    assert ident.subject == "CN=alice"
    assert ident.enrollment_id == "alice-1"
    assert ident.not_after == cert.not_valid_after_utc
    assert store.verify(cert, msp_id="Org1MSP").msp_id == "Org1MSP"


def test_unknown_ca_is_refused(store) -> None:
    other = _issue("Other CA", None, ca=True)
    cert = _leaf(other)
    with pytest.raises(UnknownCertificateAuthority, match="unknown CA") as info:
        store.verify(cert)
    assert isinstance(info.value, CertificateRejected)
    assert info.value.code == "AL1203"


def test_claimed_msp_must_be_the_issuing_one(store, root) -> None:
    other = _issue("Org2 CA", None, ca=True)
    store.add_ca("Org2MSP", other[0])
    cert = _leaf(root)
    with pytest.raises(UnknownCertificateAuthority, match="MSP Org2MSP"):
        store.verify(cert, msp_id="Org2MSP")
    with pytest.raises(UnknownCertificateAuthority, match="not trusted"):
        store.verify(cert, msp_id="Org9MSP")


def test_same_issuer_name_but_foreign_signature_is_a_bad_chain(store, root) -> None:
    impostor_key = _key()
    cert, _ = _issue("alice", (root[0].subject, impostor_key))
    with pytest.raises(BadCertificateChain, match="signature does not verify"):
        store.verify(cert)


def test_expired_and_not_yet_valid(store, root) -> None:
    expired = _leaf(
        root, not_before=NOW - dt.timedelta(days=10), not_after=NOW - dt.timedelta(days=1)
    )
    with pytest.raises(CertificateExpired, match="expired"):
        store.verify(expired)
    future = _leaf(
        root, not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=10)
    )
    with pytest.raises(CertificateNotYetValid, match="not yet valid"):
        store.verify(future)
    # `at` moves the clock: the future certificate is fine then.
    assert store.verify(future, at=NOW + dt.timedelta(days=2)).subject == "CN=alice"
    # A naive datetime is read as UTC.
    naive = (NOW + dt.timedelta(days=2)).replace(tzinfo=None)
    assert store.verify(future, at=naive).subject == "CN=alice"


def test_key_usage_must_include_digital_signature(store, root) -> None:
    with pytest.raises(NoDigitalSignatureUsage, match="does not include digitalSignature"):
        store.verify(_leaf(root, usage=_usage(sign=False)))
    with pytest.raises(NoDigitalSignatureUsage, match="no key usage extension"):
        store.verify(_leaf(root, with_usage=False))


def test_revoked_on_the_issuers_crl(root) -> None:
    cert = _leaf(root)
    other = _leaf(root)
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0], crls=[_crl(root[0], root[1], [cert.serial_number])])
    with pytest.raises(CertificateRevoked, match="revoked") as info:
        s.verify(cert)
    assert info.value.code == "AL1206"
    assert s.verify(other).msp_id == "Org1MSP"


def test_a_revocation_after_the_time_of_the_check_does_not_count(root) -> None:
    # "Valid at the time": an event anchored before the revocation stays verifiable.
    cert = _leaf(root)
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0], crls=[_crl(root[0], root[1], [cert.serial_number])])
    revoked_at = NOW - dt.timedelta(minutes=1)
    assert s.verify(cert, at=revoked_at - dt.timedelta(seconds=1)).msp_id == "Org1MSP"
    with pytest.raises(CertificateRevoked):
        s.verify(cert, at=revoked_at)
    with pytest.raises(CertificateRevoked):
        s.verify(cert, at=NOW)


def test_crl_not_signed_by_the_issuer_is_ignored(root) -> None:
    cert = _leaf(root)
    forged = _crl(root[0], _key(), [cert.serial_number])
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0], crls=[forged])
    assert s.verify(cert).msp_id == "Org1MSP"


def test_intermediate_chain_and_revoked_intermediate(root) -> None:
    inter, inter_key = _issue("Intermediate CA", (root[0].subject, root[1]), ca=True)
    leaf, _ = _issue("carol", (inter.subject, inter_key))
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0], intermediates=[inter])
    assert s.verify(leaf).subject == "CN=carol"
    # Without the intermediate the issuer is unknown.
    bare = certs.TrustStore()
    bare.add_ca("Org1MSP", root[0])
    with pytest.raises(UnknownCertificateAuthority):
        bare.verify(leaf)
    revoking = certs.TrustStore()
    revoking.add_ca(
        "Org1MSP",
        root[0],
        intermediates=[inter],
        crls=[_crl(root[0], root[1], [inter.serial_number])],
    )
    with pytest.raises(CertificateRevoked, match="Intermediate CA"):
        revoking.verify(leaf)


def test_expired_ca_is_a_bad_chain() -> None:
    old_root = _issue(
        "Old CA",
        None,
        ca=True,
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW - dt.timedelta(days=1),
    )
    leaf = _leaf(old_root)
    s = certs.TrustStore()
    s.add_ca("Org1MSP", old_root[0])
    with pytest.raises(BadCertificateChain, match="outside its validity"):
        s.verify(leaf)


# -- MSP folders -----------------------------------------------------------------------


def test_msp_folders_and_crl_reload(tmp_path: Path) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    alice = ca.enroll("Org1", "alice", "member")
    bob = ca.enroll("Org2", "bob", "auditor")
    store = certs.TrustStore.from_msp_dirs(
        {"Org1MSP": ca.org_msp_dir("Org1"), "Org2MSP": ca.org_msp_dir("Org2")}
    )
    assert store.msp_ids == ("Org1MSP", "Org2MSP")
    alice_cert = certs.load_certificate((alice / "signcerts" / "cert.pem").read_bytes())
    bob_cert = certs.load_certificate((bob / "signcerts" / "cert.pem").read_bytes())
    assert store.verify(alice_cert).msp_id == "Org1MSP"
    assert store.verify(bob_cert).role == "auditor"
    ca.revoke("Org1", "alice")
    # The CRL file changed on disk: the same store honours it without a reload call.
    with pytest.raises(CertificateRevoked):
        store.verify(alice_cert)
    assert store.verify(bob_cert).msp_id == "Org2MSP"


def test_msp_folder_without_cacerts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MspFolderError, match="cacerts"):
        certs.TrustStore.from_msp_dirs({"Org1MSP": tmp_path})
    (tmp_path / "cacerts").mkdir()
    (tmp_path / "cacerts" / "bad.pem").write_text("nope")
    with pytest.raises(MspFolderError, match=r"bad\.pem"):
        certs.TrustStore.from_msp_dirs({"Org1MSP": tmp_path})


def test_unreadable_crl_is_refused(tmp_path: Path) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    msp = ca.create_org("Org1")
    (msp / "crls" / "junk.pem").write_bytes(b"-----BEGIN X509 CRL-----\nAAAA\n")
    with pytest.raises(MspFolderError, match=r"junk\.pem"):
        certs.TrustStore.from_msp_dirs({"Org1MSP": msp})


def test_explicit_ca_and_crl_paths(tmp_path: Path, root) -> None:
    cert = _leaf(root)
    crl_path = tmp_path / "crl.der"
    crl_path.write_bytes(
        _crl(root[0], root[1], [cert.serial_number]).public_bytes(serialization.Encoding.DER)
    )
    s = certs.TrustStore()
    s.add_ca("Org1MSP", root[0].public_bytes(serialization.Encoding.PEM), crls=[crl_path])
    with pytest.raises(CertificateRevoked):
        s.verify(cert)
    assert s.root_certificates("Org1MSP") == (root[0],)
    assert s.root_certificates("nope") == ()
    assert os.path.exists(crl_path)


def test_half_written_crl_keeps_the_last_good_one(tmp_path: Path) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    alice = certs.load_certificate(
        (ca.enroll("Org1", "alice", "member") / "signcerts" / "cert.pem").read_bytes()
    )
    crl_file = ca.revoke("Org1", "alice")
    store = ca.trust_store()
    with pytest.raises(CertificateRevoked):
        store.verify(alice)
    good = crl_file.read_bytes()
    crl_file.write_bytes(good[: len(good) // 2])  # a writer caught mid-copy
    with pytest.raises(CertificateRevoked):
        store.verify(alice)
    crl_file.write_bytes(good)
    with pytest.raises(CertificateRevoked):
        store.verify(alice)
