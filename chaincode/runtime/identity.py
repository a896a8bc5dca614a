"""The transaction creator's identity, read from its X.509 certificate.

Defect (d): the shim's ``ClientIdentity.get_attribute()`` always answers None
(it never reads the certificate). :class:`ClientIdentity` here parses the
creator certificate itself: MSP id, the certificate's fingerprint (hex SHA-256
of its DER encoding, the form used everywhere in Anchorline) and the Fabric CA
attribute extension (OID 1.2.3.4.5.6.7.8.1, whose value is the JSON text
``{"attrs": {"anchorline.role": "admin", "hf.EnrollmentID": ...}}``).
It is a subclass of the shim's ClientIdentity, so code written against the
contract API keeps working.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chaincode.runtime._shim import transaction_context
from chaincode.runtime.errors import Forbidden

#: Fabric CA writes enrolment attributes into this extension.
ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


def parse_creator(creator: Any) -> tuple[str, bytes]:
    """``(msp_id, certificate bytes)`` from what a stub's ``get_creator()`` returns.

    Accepted forms: the shim's dict ``{"mspid": str, "idBytes": bytes}``, a
    ``SerializedIdentity`` protobuf message, or its serialised bytes.
    """
    if isinstance(creator, dict):
        msp_id = creator.get("mspid") or ""
        id_bytes = creator.get("idBytes") or b""
    elif isinstance(creator, bytes | bytearray):
        from fabric_protos.msp import identities_pb2

        sid = identities_pb2.SerializedIdentity.FromString(bytes(creator))
        msp_id, id_bytes = sid.mspid, sid.id_bytes
    elif hasattr(creator, "mspid") and hasattr(creator, "id_bytes"):
        msp_id, id_bytes = creator.mspid, creator.id_bytes
    else:
        raise Forbidden("the transaction has no creator identity")
    if isinstance(id_bytes, str):
        id_bytes = id_bytes.encode()
    return str(msp_id), bytes(id_bytes)


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM (what Fabric puts in ``id_bytes``) or DER."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the certificate's DER encoding (lower case, 64 characters)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The Fabric CA attributes in ``cert`` (empty when it carries none).

    A malformed attribute extension is treated as carrying no attributes: a
    role is granted only when it can be read unambiguously.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return {}
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    attrs = doc.get("attrs") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        return {}
    return {str(k): str(v) for k, v in attrs.items() if isinstance(v, str | int | float | bool)}


class ClientIdentity(transaction_context.ClientIdentity):  # type: ignore[misc]
    """The creator of the current transaction.

    Everything is read from the signed proposal's creator, never from
    transaction arguments. Raises :class:`~chaincode.runtime.errors.Forbidden`
    when the creator has no usable X.509 certificate.
    """

    def __init__(self, stub: Any) -> None:
        super().__init__(stub)
        msp_id, cert_bytes = parse_creator(stub.get_creator())
        if not msp_id or not cert_bytes:
            raise Forbidden("the transaction creator has no MSP id or certificate")
        try:
            self._certificate = load_certificate(cert_bytes)
        except ValueError as exc:
            raise Forbidden("the transaction creator's certificate cannot be parsed") from exc
        self._msp_id = msp_id
        self._cert = cert_bytes
        self._attrs = certificate_attributes(self._certificate)
        self._fingerprint = certificate_fingerprint(self._certificate)
        # The shim's base class would re-read the creator lazily; everything is loaded.
        self._loaded = True

    @property
    def msp_id(self) -> str:
        return self._msp_id

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the creator certificate's DER encoding."""
        return self._fingerprint

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def attributes(self) -> dict[str, str]:
        return dict(self._attrs)

    @property
    def role(self) -> str | None:
        """The ``anchorline.role`` attribute (member, auditor, admin), if any."""
        return self._attrs.get("anchorline.role")

    def get_mspid(self) -> str:
        return self._msp_id

    def get_id(self) -> str:
        """``base64("x509::<subject DN>::<issuer DN>")``, the form Fabric's Go ``cid`` uses."""
        subject = self._certificate.subject.rfc4514_string()
        issuer = self._certificate.issuer.rfc4514_string()
        return base64.b64encode(f"x509::{subject}::{issuer}".encode()).decode()

    def get_attribute(self, attr_name: str) -> str | None:
        return self._attrs.get(attr_name)

    def assert_attribute(self, attr_name: str) -> bool:
        return attr_name in self._attrs

    def assert_attribute_value(self, attr_name: str, value: str) -> bool:
        return self._attrs.get(attr_name) == value

    def get_x509(self) -> bytes:
        return self._cert
