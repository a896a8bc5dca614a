"""Fabric CA request tokens: what the CA verifies, byte for byte."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gateway.identity.signing import P256_ORDER
from network.ca_rest import CARest, Enrolment, _csr


def _registrar() -> tuple[Enrolment, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registrar")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Enrolment(key_pem, cert.public_bytes(serialization.Encoding.PEM), "ski"), key


def test_token_signs_method_uri_body_and_cert_with_low_s() -> None:
    registrar, key = _registrar()
    body = b'{"id":"alice"}'
    for _ in range(20):  # low-S must hold whatever the random nonce gave
        token = CARest.token(registrar, "POST", "/api/v1/register", body)
        b64cert, b64sig = token.split(".")
        assert base64.b64decode(b64cert) == registrar.cert_pem
        signature = base64.b64decode(b64sig)
        payload = ".".join(
            [
                "POST",
                base64.b64encode(b"/api/v1/register").decode(),
                base64.b64encode(body).decode(),
                b64cert,
            ]
        ).encode()
        key.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        assert decode_dss_signature(signature)[1] <= P256_ORDER // 2


def test_csr_carries_cn_and_sans() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.load_pem_x509_csr(_csr(key, "peer0.org1", ["localhost", "127.0.0.1", "peer0.org1"]))
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "peer0.org1"
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "peer0.org1"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert csr.is_signature_valid
