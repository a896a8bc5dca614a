"""Signing: ECDSA P-256 over SHA-256, low-S, behind a small interface.

This is the one place the project signs and verifies ECDSA: Fabric messages
(proposals, envelopes, blocks), gateway events, login challenges, batch
records, event proofs and checkpoint notes all go through :func:`verify` and
a :class:`Signer`.

Fabric signs a SHA-256 digest of the message bytes, DER-encodes the
signature, and rejects any signature whose ``s`` is in the upper half of
the curve order ("high-S"), because both ``s`` and ``n - s`` verify and
Fabric wants exactly one valid encoding per signature.

Public API (stable; the embedded ledger and the client library import it):

- :class:`Signer` — protocol with ``sign(digest: bytes) -> bytes``: given the
  32-byte SHA-256 digest, return a DER signature (low-S). A key that lives in
  an HSM or on a member's device implements this protocol, or the caller
  signs offline (see ``gateway.ledger``: every signed step exposes
  ``digest()`` and accepts a signature made elsewhere).
- :class:`EcdsaSigner` — a :class:`Signer` over a ``cryptography`` P-256
  private key; ``EcdsaSigner.from_pem(pem)``.
- :func:`sha256` — the digest Fabric signs.
- :func:`sign_message` — ``signer.sign(sha256(message))``.
- :func:`to_low_s`, :func:`is_low_s` — normalise / check a DER signature;
  :func:`low_s_from_raw` — low-S DER from a token's ``r || s``
  (``gateway.identity.pkcs11``).
- :func:`verify` — check a DER signature over a message with a public key.
  ``require_low_s`` says which rule the caller's protocol has: true (the
  default) for Fabric messages, as Fabric peers and orderers check; false for
  what members sign outside Fabric (events, login challenges) and what a
  third party re-checks (proofs, checkpoint notes), because browsers'
  WebCrypto signs high-S about half the time.

Everything signed here is low-S, so it verifies under either rule.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.errors import InvalidInput

# Order of the P-256 group (FIPS 186-4, D.1.2.3).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER >> 1

_PREHASHED_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))
_SHA256 = ec.ECDSA(hashes.SHA256())


@runtime_checkable
class Signer(Protocol):
    """Something that signs a SHA-256 digest for one identity.

    ``sign`` receives the 32-byte digest (not the message) and returns a DER
    ECDSA signature with low S. It may block briefly (an HSM call); a signer
    that needs seconds (a person's device) should be replaced by offline
    signing through the ``digest()``/signature methods of the ledger client.
    """

    def sign(self, digest: bytes) -> bytes: ...


def sha256(message: bytes) -> bytes:
    """The digest Fabric signs and verifies: SHA-256 of the exact message bytes."""
    return hashlib.sha256(message).digest()


def is_low_s(signature: bytes) -> bool:
    """True when the DER signature's ``s`` is at most half the P-256 order."""
    _, s = decode_dss_signature(signature)
    return s <= _HALF_ORDER


def to_low_s(signature: bytes) -> bytes:
    """The same signature with ``s`` replaced by ``n - s`` when ``s`` is high.

    Both encodings verify; Fabric accepts only the low one.
    """
    r, s = decode_dss_signature(signature)
    if s > _HALF_ORDER:
        s = P256_ORDER - s
        return encode_dss_signature(r, s)
    return signature


def low_s_from_raw(raw: bytes) -> bytes:
    """The low-S DER form of a P-256 signature given as ``r || s`` (32 bytes each), the
    form PKCS#11 tokens return (``CKM_ECDSA``); ``ValueError`` for another length."""
    if len(raw) != 64:
        raise ValueError(f"a P-256 r || s signature is 64 bytes, got {len(raw)}")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    return encode_dss_signature(r, P256_ORDER - s if s > _HALF_ORDER else s)


class EcdsaSigner:
    """Signs with an in-process P-256 private key, always returning low-S DER."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise InvalidInput(
                f"Fabric identities here use P-256 keys; got curve {private_key.curve.name}"
            )
        self._key = private_key

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> EcdsaSigner:
        """A signer from a PEM private key (PKCS#8 or SEC1), as found in an MSP keystore."""
        try:
            key = serialization.load_pem_private_key(pem, password=password)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"not a usable PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput("the private key is not an elliptic-curve key")
        return cls(key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise InvalidInput(f"expected a 32-byte SHA-256 digest, got {len(digest)} bytes")
        return to_low_s(self._key.sign(digest, _PREHASHED_SHA256))


def sign_message(signer: Signer, message: bytes) -> bytes:
    """Sign ``message`` the way Fabric expects: DER ECDSA over its SHA-256 digest."""
    return signer.sign(sha256(message))


def verify(
    public_key: ec.EllipticCurvePublicKey,
    message: bytes,
    signature: bytes,
    *,
    require_low_s: bool = True,
) -> bool:
    """True when ``signature`` is a valid DER ECDSA-SHA256 signature of ``message``.

    ``message`` is the signed bytes themselves (hashed here with SHA-256).
    With ``require_low_s`` (the default, Fabric's rule) a high-S signature is
    refused even though it is mathematically valid; without it both forms
    are accepted. The low-S bound is P-256's: pass ``require_low_s=False``
    for keys on other curves. Malformed DER, a signature by another key and
    a signature over other bytes all give ``False``; this never raises for a
    bad signature.
    """
    try:
        if require_low_s and not is_low_s(signature):
            return False
        public_key.verify(signature, message, _SHA256)
    except (InvalidSignature, ValueError):
        return False
    return True
