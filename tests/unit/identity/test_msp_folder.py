"""MSP folders, PEM identities and serialized identities."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2

from gateway.errors import InvalidInput
from gateway.identity.errors import CertificateParseError, MspFolderError
from gateway.identity.msp import (
    identity_from_pem,
    load_msp,
    load_private_key,
    parse_serialized_identity,
)
from gateway.identity.signing import sign_message, verify


def _cert(key: ec.EllipticCurvePrivateKey, name: str = "alice") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _msp(root: Path, key_name: str | None = "abc_sk") -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "signcerts").mkdir(parents=True)
    (root / "signcerts" / "cert.pem").write_bytes(
        _cert(key).public_bytes(serialization.Encoding.PEM)
    )
    (root / "cacerts").mkdir()
    (root / "cacerts" / "ca.pem").write_bytes(b"CA")
    if key_name is not None:
        (root / "keystore").mkdir()
        (root / "keystore" / key_name).write_bytes(_pem_key(key))
    return root, key


def test_load_msp_folder_and_sign(tmp_path: Path) -> None:
    msp, key = _msp(tmp_path / "msp")
    folder = load_msp(msp, "Org1MSP", require_key=True)
    assert folder.msp_id == "Org1MSP"
    assert folder.ca_certs == (b"CA",)
    der = folder.identity.certificate.public_bytes(serialization.Encoding.DER)
    assert folder.identity.fingerprint == hashlib.sha256(der).hexdigest()
    signature = sign_message(folder.signer(), b"hello")
    assert verify(key.public_key(), b"hello", signature)


def test_key_file_with_any_name_is_found(tmp_path: Path) -> None:
    msp, _ = _msp(tmp_path / "msp", key_name="priv_key.pem")
    (msp / "keystore" / "README").write_text("not a key")
    assert load_msp(msp, "Org1MSP").private_key is not None


def test_folder_without_key_is_for_offline_signing(tmp_path: Path) -> None:
    msp, _ = _msp(tmp_path / "msp", key_name=None)
    folder = load_msp(msp, "Org1MSP")
    assert folder.private_key is None
    with pytest.raises(MspFolderError):
        folder.signer()
    with pytest.raises(MspFolderError):
        load_msp(msp, "Org1MSP", require_key=True)


def test_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    msp, _ = _msp(tmp_path / "msp")
    other = ec.generate_private_key(ec.SECP256R1())
    (msp / "keystore" / "abc_sk").write_bytes(_pem_key(other))
    with pytest.raises(MspFolderError, match="does not match"):
        load_msp(msp, "Org1MSP")


def test_not_an_msp_folder(tmp_path: Path) -> None:
    with pytest.raises(MspFolderError):
        load_msp(tmp_path, "Org1MSP")
    (tmp_path / "signcerts").mkdir()
    with pytest.raises(MspFolderError):
        load_msp(tmp_path, "Org1MSP")


def test_serialized_identity_round_trip_and_layout() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(key)
    identity = identity_from_pem("Org2MSP", cert.public_bytes(serialization.Encoding.DER))
    assert identity.certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    data = identity.serialize()
    message = identities_pb2.SerializedIdentity.FromString(data)
    assert message.mspid == "Org2MSP"
    assert x509.load_pem_x509_certificate(message.id_bytes) == cert
    assert parse_serialized_identity(data) == identity


def test_bad_bytes_are_typed_errors() -> None:
    with pytest.raises(CertificateParseError):
        identity_from_pem("Org1MSP", b"-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(CertificateParseError):
        parse_serialized_identity(b"\xff\xff")
    with pytest.raises(InvalidInput):
        identity_from_pem("", b"x")
    with pytest.raises(InvalidInput):
        load_private_key(b"garbage")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidInput):
        load_private_key(_pem_key(p384))
