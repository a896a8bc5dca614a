"""The PKCS#11 signer on a real SoftHSM2 token: signatures, key attributes, each error."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from gateway.config import Pkcs11Settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.csr import certificate_request, load_request
from gateway.identity.errors import (
    CaError,
    TokenError,
    TokenKeyExists,
    TokenKeyMismatch,
    TokenKeyNotFound,
    TokenModuleError,
    TokenNoP256,
    TokenNotFound,
    TokenPinIncorrect,
    TokenPinUnavailable,
)
from gateway.identity.keysource import enroll_in_token, load_identity
from gateway.identity.msp import load_msp
from gateway.identity.pkcs11 import Token, TokenConfig, check_p256_mechanism, open_signer
from gateway.identity.signing import is_low_s, sha256, verify
from tests.softhsm_fixtures import SoftHsm

pytestmark = pytest.mark.softhsm


def _label() -> str:
    return f"k-{uuid.uuid4().hex[:10]}"


def _raw_keypair(softhsm: SoftHsm, label: str, curve: str, *, extractable: bool) -> None:
    """A key pair made directly through the binding, as another tool might leave one
    (the ``token`` fixture's session is logged in: login is per process)."""
    lib = pkcs11.lib(str(softhsm.module))
    with lib.get_token(token_label=softhsm.token_label).open(rw=True) as session:
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
        )
        params.generate_keypair(
            store=True,
            label=label,
            private_template={
                Attribute.EXTRACTABLE: extractable,
                Attribute.SENSITIVE: not extractable,
            },
        )
        assert session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)


@pytest.fixture
def token(pkcs11_settings: Pkcs11Settings) -> Iterator[Token]:
    t = Token.open(TokenConfig.from_settings(pkcs11_settings))
    yield t
    t.close()


def test_token_signs_low_s_der_that_verifies(token: Token) -> None:
    signer = token.generate_key(_label())
    for i in range(64):
        message = f"message {i}".encode()
        signature = signer.sign(sha256(message))
        assert is_low_s(signature)
        assert verify(signer.public_key, message, signature)
        assert not verify(signer.public_key, message + b"!", signature)


def test_generated_key_cannot_leave_the_token(token: Token) -> None:
    label = _label()
    token.generate_key(label)
    assert token.key_attributes(label) == {
        "extractable": False,
        "sensitive": True,
        "never_extractable": True,
    }


def test_a_second_session_finds_the_key_by_label(
    token: Token, pkcs11_settings: Pkcs11Settings
) -> None:
    label = _label()
    first = token.generate_key(label)
    again = open_signer(TokenConfig.from_settings(pkcs11_settings), label)
    try:
        message = b"same key, two sessions"
        assert verify(first.public_key, message, again.sign(sha256(message)))
    finally:
        again.close()


def test_wrong_pin_is_refused(softhsm: SoftHsm) -> None:
    config = TokenConfig(str(softhsm.module), softhsm.token_label, "not-the-pin")
    with pytest.raises(TokenPinIncorrect, match="PIN of token") as info:
        Token.open(config)
    assert info.value.code == "AL1233"
    assert "not-the-pin" not in str(info.value)
    assert "not-the-pin" not in repr(config)


def test_missing_token(pkcs11_settings: Pkcs11Settings) -> None:
    settings = dataclasses.replace(pkcs11_settings, token_label="no-such-token")
    with pytest.raises(TokenNotFound, match="no-such-token") as info:
        Token.open(TokenConfig.from_settings(settings))
    assert info.value.code == "AL1232"


def test_missing_module(tmp_path: Path, pkcs11_settings: Pkcs11Settings) -> None:
    settings = dataclasses.replace(pkcs11_settings, module=str(tmp_path / "libnothing.so"))
    with pytest.raises(TokenModuleError, match="does not exist"):
        Token.open(TokenConfig.from_settings(settings))


def test_key_label_not_found(token: Token) -> None:
    with pytest.raises(TokenKeyNotFound, match="no private key labelled 'absent'") as info:
        token.signer("absent")
    assert info.value.code == "AL1234"


def test_duplicate_label_is_refused(token: Token) -> None:
    label = _label()
    token.generate_key(label)
    with pytest.raises(TokenKeyExists):
        token.generate_key(label)


def test_a_key_on_another_curve_is_refused(softhsm: SoftHsm, token: Token) -> None:
    label = _label()
    _raw_keypair(softhsm, label, "secp384r1", extractable=False)
    with pytest.raises(TokenNoP256, match="not on P-256") as info:
        token.signer(label)
    assert info.value.code == "AL1235"


def test_an_extractable_key_is_refused(softhsm: SoftHsm, token: Token) -> None:
    label = _label()
    _raw_keypair(softhsm, label, "secp256r1", extractable=True)
    with pytest.raises(TokenError, match="can leave the token"):
        token.signer(label)


def test_a_token_without_ecdsa_or_p256_sizes_is_refused() -> None:
    good = {Mechanism.ECDSA, Mechanism.EC_KEY_PAIR_GEN}
    check_p256_mechanism(good, 112, 521)
    with pytest.raises(TokenNoP256, match="lacks ECDSA"):
        check_p256_mechanism({Mechanism.EC_KEY_PAIR_GEN, Mechanism.RSA_PKCS}, None, None)
    with pytest.raises(TokenNoP256, match="384-521 bits"):
        check_p256_mechanism(good, 384, 521)


def test_pin_comes_from_the_file_or_the_environment_variable(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    from_env = Pkcs11Settings(module="m", token_label="t", pin="1234", pin_file="/nonexistent")
    assert TokenConfig.from_settings(from_env).pin == "1234"
    assert TokenConfig.from_settings(softhsm.settings()).pin == softhsm.pin_file.read_text().strip()
    with pytest.raises(TokenPinUnavailable, match="no PIN"):
        TokenConfig.from_settings(Pkcs11Settings(module="m", token_label="t"))
    empty = tmp_path / "empty.pin"
    empty.write_text("")
    with pytest.raises(TokenPinUnavailable, match="is empty"):
        TokenConfig.from_settings(Pkcs11Settings(module="m", token_label="t", pin_file=str(empty)))
    with pytest.raises(TokenPinUnavailable, match="cannot read"):
        TokenConfig.from_settings(
            Pkcs11Settings(module="m", token_label="t", pin_file=str(tmp_path / "absent"))
        )


def test_certificate_request_signed_by_the_token(token: Token) -> None:
    signer = token.generate_key(_label())
    pem = certificate_request(signer, signer.public_key, "alice", ["alice.example", "127.0.0.1"])
    request = load_request(pem)
    assert request.subject.rfc4514_string() == "CN=alice"
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["alice.example"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_request_signed_by_another_key_is_refused(token: Token) -> None:
    signer = token.generate_key(_label())
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(CaError, match="does not verify"):
        load_request(certificate_request(signer, other, "mallory"))


def test_built_in_ca_enrols_a_token_key_and_writes_no_private_key(
    tmp_path: Path, token: Token, pkcs11_settings: Pkcs11Settings
) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    label = _label()
    msp = enroll_in_token(ca, token, org="Org1", name="alice", role="member", key_label=label)
    assert not (msp / "keystore").exists()
    folder = load_msp(msp, "Org1MSP")
    assert folder.private_key is None
    assert ca.trust_store().verify(folder.identity.certificate_pem).role == "member"
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "ca-key.pem":
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    found, signer = load_identity(msp, "Org1MSP", pkcs11=pkcs11_settings, key_label=label)
    digest = hashlib.sha256(b"hello").digest()
    assert verify(found.identity.public_key, b"hello", signer.sign(digest))
    signer.close()  # type: ignore[attr-defined]


def test_a_token_key_that_is_not_the_certificates_is_refused(
    tmp_path: Path, token: Token, pkcs11_settings: Pkcs11Settings
) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    msp = enroll_in_token(ca, token, org="Org1", name="bob", role="member", key_label=_label())
    other = _label()
    token.generate_key(other)
    with pytest.raises(TokenKeyMismatch) as info:
        load_identity(msp, "Org1MSP", pkcs11=pkcs11_settings, key_label=other)
    assert info.value.code == "AL1239"


def test_wrong_pin_is_refused_while_another_session_is_logged_in(
    token: Token, softhsm: SoftHsm
) -> None:
    # The library's login is per process: the second Token must not ride on the first.
    with pytest.raises(TokenPinIncorrect):
        Token.open(TokenConfig(str(softhsm.module), softhsm.token_label, "wrong-again"))
