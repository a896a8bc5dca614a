"""The JS TrustStore and the gateway's agree on certificate chains, validity, key usage and CRLs.

Certificates are built here with ``cryptography``: roots of two MSPs (P-256 and P-384),
an intermediate CA, leaves valid, expired, not yet valid, without digitalSignature or
key usage, issued by a CA that only borrows a trusted CA's name, revoked by the
intermediate's CRL, under an intermediate revoked by the root's CRL. Each is checked
by ``gateway.identity.certificates.TrustStore.verify`` and by the JS package
(``clients/js/tools/verify-certs.mjs``): the outcome (identity or AL code) must match.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import AnchorlineError
from gateway.identity.certificates import ATTRIBUTES_OID, TrustStore
from tests.integration.js.support import JS_DIR, NODE, node_ready

pytestmark = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    start: dt.datetime = NOW - 30 * DAY,
    end: dt.datetime = NOW + 365 * DAY,
    usage: str | None = "sign",
    role: str | None = "member",
    serial: int | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=usage == "sign" or ca,
                content_commitment=False,
                key_encipherment=usage == "encipher",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if role is not None and not ca:
        attrs = {"attrs": {"anchorline.role": role, "hf.EnrollmentID": "user-" + role}}
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ATTRIBUTES_OID, json.dumps(attrs).encode()),
            critical=False,
        )
    algorithm = hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def _crl(
    issuer: x509.Name, key: ec.EllipticCurvePrivateKey, serials: list[int]
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(NOW - DAY)
        .next_update(NOW + 30 * DAY)
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - DAY)
            .build()
        )
    return builder.sign(key, hashes.SHA256())


def _pem(obj: x509.Certificate | x509.CertificateRevocationList) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def _key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def _scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    root1_key, root2_key, inter_key, fake_key = _key(), _key(ec.SECP384R1()), _key(), _key()
    root1_name, root2_name = _name("ca.org1", "org1"), _name("ca.org2", "org2")
    inter_name = _name("ica.org1", "org1")
    inter2_name = _name("ica2.org1", "org1")
    root1 = _cert(root1_name, root1_key, root1_name, root1_key, ca=True, end=NOW + 3650 * DAY)
    root2 = _cert(root2_name, root2_key, root2_name, root2_key, ca=True, end=NOW + 3650 * DAY)
    inter = _cert(inter_name, inter_key, root1_name, root1_key, ca=True, end=NOW + 100 * DAY)
    inter2_key = _key()
    inter2 = _cert(inter2_name, inter2_key, root1_name, root1_key, ca=True)
    leaf = _name("alice", "org1")
    revoked_serial = 0x1234567
    certs = {
        "direct-p256": _cert(leaf, _key(), root1_name, root1_key),
        "direct-p384-root": _cert(_name("bob", "org2"), _key(), root2_name, root2_key),
        "via-intermediate": _cert(leaf, _key(), inter_name, inter_key),
        "expired": _cert(leaf, _key(), root1_name, root1_key, end=NOW - DAY),
        "not-yet-valid": _cert(leaf, _key(), root1_name, root1_key, start=NOW + DAY),
        "no-key-usage": _cert(leaf, _key(), root1_name, root1_key, usage=None),
        "no-digital-signature": _cert(leaf, _key(), root1_name, root1_key, usage="encipher"),
        "borrowed-ca-name": _cert(leaf, _key(), root1_name, fake_key),
        "unknown-ca": _cert(leaf, _key(), _name("ca.other", "other"), fake_key),
        "revoked-by-intermediate": _cert(
            leaf, _key(), inter_name, inter_key, serial=revoked_serial
        ),
        "under-revoked-intermediate": _cert(leaf, _key(), inter2_name, inter2_key),
        "no-role": _cert(leaf, _key(), root1_name, root1_key, role=None),
    }
    # A CRL "from" the root but signed with another key must be ignored, not honoured.
    forged = _crl(root1_name, fake_key, [certs["direct-p256"].serial_number])
    trust = {
        "Org1MSP": {
            "cacerts": [_pem(root1)],
            "intermediates": [_pem(inter), _pem(inter2)],
            "crls": [
                _pem(_crl(inter_name, inter_key, [revoked_serial])),
                _pem(_crl(root1_name, root1_key, [inter2.serial_number])),
                _pem(forged),
            ],
        },
        "Org2MSP": {"cacerts": [_pem(root2)], "intermediates": [], "crls": []},
    }
    at = int(NOW.timestamp() * 1000)
    cases = [{"name": n, "pem": _pem(c), "at": at} for n, c in certs.items()]
    cases.append(
        {
            "name": "pinned-right-msp",
            "pem": _pem(certs["direct-p256"]),
            "at": at,
            "msp_id": "Org1MSP",
        }
    )
    cases.append(
        {
            "name": "pinned-other-msp",
            "pem": _pem(certs["direct-p256"]),
            "at": at,
            "msp_id": "Org2MSP",
        }
    )
    cases.append(
        {
            "name": "pinned-unknown-msp",
            "pem": _pem(certs["direct-p256"]),
            "at": at,
            "msp_id": "Org9MSP",
        }
    )
    # The intermediate itself expires before the leaf: the chain is refused then.
    cases.append(
        {
            "name": "intermediate-expired",
            "pem": _pem(certs["via-intermediate"]),
            "at": int((NOW + 200 * DAY).timestamp() * 1000),
        }
    )
    return trust, cases


def _python(trust_spec: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    trust = TrustStore()
    for msp_id, spec in trust_spec.items():
        for i, pem in enumerate(spec["cacerts"]):
            trust.add_ca(
                msp_id,
                pem,
                intermediates=spec["intermediates"] if i == 0 else (),
                crls=spec["crls"] if i == 0 else (),
            )
    at = dt.datetime.fromtimestamp(case["at"] / 1000, dt.UTC)
    try:
        ident = trust.verify(case["pem"], at=at, msp_id=case.get("msp_id"))
    except AnchorlineError as exc:
        return {"code": exc.code}
    return {
        "msp_id": ident.msp_id,
        "role": ident.role,
        "fingerprint": ident.fingerprint,
        "enrollment_id": ident.enrollment_id,
    }


def test_js_trust_store_agrees_with_the_gateway(tmp_path: Path) -> None:
    trust, cases = _scenario()
    path = tmp_path / "certs.json"
    path.write_text(json.dumps({"trust": trust, "certs": cases}))
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(JS_DIR / "tools" / "verify-certs.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    js = json.loads(done.stdout)
    python = {c["name"]: _python(trust, c) for c in cases}
    assert js == python
    # The scenario means something: each refusal code occurs, and valid chains pass.
    codes = {v.get("code") for v in python.values()}
    assert {"AL1203", "AL1204", "AL1205", "AL1206", "AL1207", "AL1208"} <= codes, python
    assert python["via-intermediate"]["msp_id"] == "Org1MSP"
    assert python["intermediate-expired"] == {"code": "AL1208"}
    assert python["direct-p384-root"]["msp_id"] == "Org2MSP"
    assert python["direct-p256"]["role"] == "member"  # the forged CRL was ignored
