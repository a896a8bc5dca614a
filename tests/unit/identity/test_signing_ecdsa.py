"""ECDSA P-256 signing: low-S normalisation, digests, verification."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

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


# -- verify: the one ECDSA check, with the low-S rule as the caller's parameter ------------


def _high_s(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, P256_ORDER - s)


@pytest.mark.parametrize("require_low_s", [True, False])
def test_a_low_s_signature_verifies_under_either_rule(
    key: ec.EllipticCurvePrivateKey, require_low_s: bool
) -> None:
    signature = sign_message(EcdsaSigner(key), b"event")
    assert is_low_s(signature)
    assert verify(key.public_key(), b"event", signature, require_low_s=require_low_s)


@pytest.mark.parametrize(("require_low_s", "accepted"), [(True, False), (False, True)])
def test_a_high_s_signature_is_accepted_only_when_low_s_is_not_required(
    key: ec.EllipticCurvePrivateKey, require_low_s: bool, accepted: bool
) -> None:
    high = _high_s(sign_message(EcdsaSigner(key), b"event"))
    assert not is_low_s(high)
    assert verify(key.public_key(), b"event", high, require_low_s=require_low_s) is accepted


def test_the_default_rule_is_fabrics_low_s(key: ec.EllipticCurvePrivateKey) -> None:
    high = _high_s(sign_message(EcdsaSigner(key), b"tx"))
    assert not verify(key.public_key(), b"tx", high)


@pytest.mark.parametrize("require_low_s", [True, False])
def test_another_key_or_other_bytes_are_refused(
    key: ec.EllipticCurvePrivateKey, require_low_s: bool
) -> None:
    low = sign_message(EcdsaSigner(key), b"m")
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    for signature in (low, _high_s(low)):
        assert not verify(other, b"m", signature, require_low_s=require_low_s)
        assert not verify(key.public_key(), b"m!", signature, require_low_s=require_low_s)


@pytest.mark.parametrize("require_low_s", [True, False])
@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sig: b"", id="empty"),
        pytest.param(lambda sig: b"\x30\x00", id="empty-sequence"),
        pytest.param(lambda sig: sig[:-1], id="truncated"),
        pytest.param(lambda sig: sig + b"\x00", id="trailing-byte"),
        pytest.param(lambda sig: b"\x30\x02garbage", id="bad-length"),
        pytest.param(lambda sig: encode_dss_signature(0, 1), id="r-zero"),
        pytest.param(
            lambda sig: encode_dss_signature(decode_dss_signature(sig)[0], P256_ORDER),
            id="s-equals-order",
        ),
    ],
)
def test_malformed_der_is_refused_without_raising(
    key: ec.EllipticCurvePrivateKey, require_low_s: bool, mangle: Callable[[bytes], bytes]
) -> None:
    signature = mangle(sign_message(EcdsaSigner(key), b"m"))
    assert not verify(key.public_key(), b"m", signature, require_low_s=require_low_s)


def test_keys_on_other_curves_verify_when_low_s_is_not_required() -> None:
    # Checkpoint-note verifiers may hold P-384 keys; the low-S bound is P-256's.
    p384 = ec.generate_private_key(ec.SECP384R1())
    signature = p384.sign(b"note", ec.ECDSA(hashes.SHA256()))
    assert verify(p384.public_key(), b"note", signature, require_low_s=False)
    assert not verify(p384.public_key(), b"other note", signature, require_low_s=False)


def test_low_s_from_raw_is_the_der_of_r_and_low_s() -> None:
    from gateway.identity.signing import P256_ORDER, low_s_from_raw

    r, high_s = 12345, P256_ORDER - 7
    der = low_s_from_raw(r.to_bytes(32, "big") + high_s.to_bytes(32, "big"))
    assert decode_dss_signature(der) == (r, 7)
    assert (
        decode_dss_signature(low_s_from_raw(r.to_bytes(32, "big") + (7).to_bytes(32, "big")))[1]
        == 7
    )
    with pytest.raises(ValueError, match="64 bytes"):
        low_s_from_raw(bytes(63))
