"""PKCS#10 certificate requests signed by any :class:`~gateway.identity.signing.Signer`.

``cryptography`` signs a request only with a private key object it holds; a
key in a token signs a digest and nothing more. :func:`certificate_request`
builds the request's ``CertificationRequestInfo`` itself (with
``asn1crypto``, which the PKCS#11 binding already depends on), has the
signer sign its SHA-256 digest (ECDSA P-256, ``ecdsa-with-SHA256``) and
returns PEM that ``cryptography``, Fabric CA and the built-in CA read like
any other request: the subject is ``CN=<name>``, with the DNS names / IP
addresses asked for as subjectAltName in an extension request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.errors import CaError
from gateway.identity.signing import Signer, sha256


def _general_names(hosts: Sequence[str]) -> list[asn1_x509.GeneralName]:
    names = []
    for host in hosts:
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            names.append(asn1_x509.GeneralName(name="dns_name", value=host))
        else:
            names.append(asn1_x509.GeneralName(name="ip_address", value=address))
    return names


def certificate_request(
    signer: Signer,
    public_key: ec.EllipticCurvePublicKey,
    name: str,
    hosts: Sequence[str] = (),
) -> bytes:
    """A PEM certificate request for ``public_key`` with subject ``CN=name``, signed by
    ``signer`` (which must hold the matching private key: the CA checks it)."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attributes = []
    if hosts:
        extensions = asn1_x509.Extensions(
            [
                {
                    "extn_id": "subject_alt_name",
                    "critical": False,
                    "extn_value": _general_names(hosts),
                }
            ]
        )
        attributes.append({"type": "extension_request", "values": [extensions]})
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.build({"common_name": name}),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": attributes,
        }
    )
    signature = signer.sign(sha256(info.dump()))
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    pem: bytes = asn1_pem.armor("CERTIFICATE REQUEST", request.dump())
    return pem


def load_request(pem: bytes) -> x509.CertificateSigningRequest:
    """A certificate request whose self-signature verifies (proof the requester holds
    the key), with a P-256 public key; :class:`CaError` otherwise."""
    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CaError(f"not a PEM certificate request: {exc}") from None
    try:
        valid = request.is_signature_valid
        key = request.public_key()
    except (ValueError, UnsupportedAlgorithm):
        # Parsed lazily: a damaged key, or one of a type cryptography does not know.
        raise CaError("the certificate request's key is not a P-256 elliptic-curve key") from None
    if not valid:
        raise CaError("the certificate request's signature does not verify with its own key")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CaError("the certificate request's key is not a P-256 elliptic-curve key")
    return request
