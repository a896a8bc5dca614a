"""ECDSA P-256 signing: low-S normalisation, digests, verification."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.errors import InvalidInput
from gateway.identity.signing import (
    P256_ORDER,
    EcdsaSigner,
    Signer,
    is_low_s,
    sha256,
    sign_message,
    to_low_s,
    verify,
)


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_order_constant_is_p256() -> None:
    # n from SEC 2: the group order of secp256r1.
    assert int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16) == P256_ORDER


def test_signatures_are_always_low_s_and_verify(key: ec.EllipticCurvePrivateKey) -> None:
    signer = EcdsaSigner(key)
    for i in range(200):
        message = f"message {i}".encode()
        signature = sign_message(signer, message)
        assert is_low_s(signature)
        # Independent check with cryptography's own verify over the message.
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_high_s_is_normalised_and_both_forms_verify(key: ec.EllipticCurvePrivateKey) -> None:
    message = b"fabric"
    low = EcdsaSigner(key).sign(sha256(message))
    r, s = decode_dss_signature(low)
    high = encode_dss_signature(r, P256_ORDER - s)
    assert not is_low_s(high)
    # Mathematically valid, which is why Fabric insists on one form.
    assert verify(key.public_key(), message, high, require_low_s=False)
    assert not verify(key.public_key(), message, high)
    assert to_low_s(high) == low
    assert to_low_s(low) == low


def test_sign_takes_a_digest_not_a_message(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(InvalidInput):
        EcdsaSigner(key).sign(b"not a digest")
    assert sha256(b"abc") == hashlib.sha256(b"abc").digest()


def test_verify_rejects_other_key_and_garbage(key: ec.EllipticCurvePrivateKey) -> None:
    signature = sign_message(EcdsaSigner(key), b"m")
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not verify(other, b"m", signature)
    assert not verify(key.public_key(), b"m2", signature)
    assert not verify(key.public_key(), b"m", b"\x30\x00")


def test_from_pem_and_curve_check(key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = EcdsaSigner.from_pem(pem)
    assert verify(key.public_key(), b"x", sign_message(signer, b"x"))
    with pytest.raises(InvalidInput):
        EcdsaSigner(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(InvalidInput):
        EcdsaSigner.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_a_key_held_elsewhere_satisfies_the_protocol(key: ec.EllipticCurvePrivateKey) -> None:
    class RemoteSigner:
        """Stands for an HSM: only a sign(digest) call crosses the boundary."""

        def sign(self, digest: bytes) -> bytes:
            return EcdsaSigner(key).sign(digest)

    remote = RemoteSigner()
    assert isinstance(remote, Signer)
    assert verify(key.public_key(), b"y", sign_message(remote, b"y"))
