"""ECDSA signatures over canonical bytes, checked against a certificate's key."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def decode_signature(text: str) -> bytes | None:
    """Base64 (standard or URL-safe, padding optional) to bytes; ``None`` if not base64."""
    if not isinstance(text, str) or not 8 <= len(text) <= 256:
        return None
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_signature(signature: bytes) -> str:
    """Standard base64 with padding: the form the gateway stores and broadcasts."""
    return base64.b64encode(signature).decode("ascii")


def public_key_of(cert: x509.Certificate) -> ec.EllipticCurvePublicKey | None:
    """The certificate's EC public key, or ``None`` for any other key type."""
    key = cert.public_key()
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def verify_ecdsa(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` (DER) is a valid ECDSA-SHA256 signature of ``message``.

    Both low-S and high-S forms verify: low-S is Fabric's rule for ledger
    transactions, not for gateway events.
    """
    try:
        key.verify(signature, message, _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_ecdsa(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """A DER ECDSA-SHA256 signature (used by the client library and tests)."""
    return key.sign(message, _ECDSA_SHA256)
