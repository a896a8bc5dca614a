"""C2SP tlog-checkpoint / signed-note: format, sign, parse, verify, and interop.

Interop vectors (real ECDSA type-0x02 notes and keys: Sigstore's Rekor log and
the Pixel 6 transparency log) are from
https://github.com/transparency-dev/formats/blob/0c1bd728d082e49a9b209848f1de68cc44d47289/note/note_verifier_test.go
(Apache-2.0, Google LLC).
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.anchoring.checkpoint import (
    Checkpoint,
    EcdsaNoteSigner,
    EcdsaNoteVerifier,
    NoteSignature,
    SignedNote,
    ecdsa_key_id,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from gateway.identity.signing import EcdsaSigner, is_low_s
from gateway.merkle import RFC6962_SHA256, CompactRange
from gateway.merkle.errors import (
    CheckpointFormatError,
    NoteFormatError,
    NoteKeyError,
    NoteVerificationError,
)

REKOR_KEY = (
    "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0"
    "hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="
)
REKOR_NOTE = (
    "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n"
    "— rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq"
    "20uDLet7MCoTURUCRdxwWBHHufk=\n"
)
PIXEL_KEY = (
    "pixel6_transparency_log+91c16e30+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX"
    "0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8="
)
PIXEL_NOTE = (
    "DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n"
    "— pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe4"
    "7dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n"
)
ORIGIN = "anchorline.test/marketplace"


@pytest.fixture(scope="module")
def gateway_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signer(gateway_key: ec.EllipticCurvePrivateKey) -> EcdsaNoteSigner:
    return EcdsaNoteSigner(ORIGIN, gateway_key.public_key(), EcdsaSigner(gateway_key))


def _checkpoint(size: int = 5) -> Checkpoint:
    cr = CompactRange(RFC6962_SHA256)
    cr.extend(RFC6962_SHA256.hash_leaf(bytes([i])) for i in range(size))
    return Checkpoint(ORIGIN, size, cr.root())


# -- interop with published ECDSA notes -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "note", "origin", "size"),
    [(REKOR_KEY, REKOR_NOTE, "Rekor", 798034), (PIXEL_KEY, PIXEL_NOTE, "DEFAULT", 10)],
)
def test_published_ecdsa_checkpoints_verify(key: str, note: str, origin: str, size: int) -> None:
    verifier = EcdsaNoteVerifier.from_key_string(key)
    # The key ID rule for type 0x02: SHA-256 of the DER SPKI, first four bytes.
    assert f"{verifier.key_id:08x}" == key.split("+")[1]
    assert verifier.to_key_string() == key
    cp = verify_checkpoint(note, [verifier])
    assert (cp.origin, cp.size) == (origin, size)
    assert Checkpoint.from_text(cp.to_text()) == cp
    # Byte-exact round trip of the whole note.
    assert SignedNote.parse(note).to_text() == note


def test_published_note_with_altered_text_or_signature_fails() -> None:
    verifier = EcdsaNoteVerifier.from_key_string(REKOR_KEY)
    with pytest.raises(NoteVerificationError):
        open_note(REKOR_NOTE.replace("798034", "798035"), [verifier])
    sig_b64 = REKOR_NOTE.split(" ")[-1].strip()
    raw = bytearray(base64.b64decode(sig_b64))
    raw[-1] ^= 1
    forged = REKOR_NOTE.replace(sig_b64, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(NoteVerificationError):
        open_note(forged, [verifier])


def test_verifier_key_strings_are_checked() -> None:
    material = REKOR_KEY.split("+", 2)[2]
    for bad in (
        "rekor.sigstore.dev+c0d23d6a",  # two parts
        "rekor.sigstore.dev+00000000+" + material,  # key ID of another key
        "rekor.sigstore.dev+NOTHEX00+" + material,
        "rekor.sigstore.dev+c0d23d6a+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+c0d23d6a+AwEB",  # not type 0x02
        "rekor sigstore+c0d23d6a+" + material,  # space in the name
    ):
        with pytest.raises(NoteKeyError):
            EcdsaNoteVerifier.from_key_string(bad)


# -- our own checkpoints ------------------------------------------------------------------


def test_format_is_the_c2sp_text(signer: EcdsaNoteSigner) -> None:
    cp = _checkpoint()
    text = cp.to_text()
    lines = text.split("\n")
    assert lines[:3] == [ORIGIN, "5", base64.b64encode(cp.root_hash).decode()]
    assert lines[3] == "" and text.endswith("\n")
    signed = sign_checkpoint(cp, signer)
    body, sig_line = signed.split("\n\n")
    assert body + "\n" == text
    assert sig_line.startswith(f"— {ORIGIN} ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert blob[:4] == signer.key_id.to_bytes(4, "big")
    assert is_low_s(blob[4:])


def test_sign_then_verify_round_trip(signer: EcdsaNoteSigner) -> None:
    cp = Checkpoint(ORIGIN, 12, _checkpoint(12).root_hash, ("ext one", "ext two"))
    signed = sign_checkpoint(cp, signer)
    assert verify_checkpoint(signed, [signer.verifier], origin=ORIGIN) == cp
    # A witness configures the gateway's key from its key string alone.
    witness = EcdsaNoteVerifier.from_key_string(signer.verifier.to_key_string())
    assert verify_checkpoint(signed.encode(), [witness]) == cp
    parsed, note = parse_checkpoint(signed)
    assert parsed == cp and len(note.signatures) == 1


def test_key_id_is_sha256_of_spki(gateway_key: ec.EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    der = gateway_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert ecdsa_key_id(gateway_key.public_key()) == int.from_bytes(
        hashlib.sha256(der).digest()[:4], "big"
    )


def test_every_altered_field_fails(signer: EcdsaNoteSigner) -> None:
    cp = _checkpoint(7)
    signed = sign_checkpoint(cp, signer)
    other_root = base64.b64encode(_checkpoint(8).root_hash).decode()
    for forged in (
        signed.replace("\n7\n", "\n8\n", 1),
        signed.replace(base64.b64encode(cp.root_hash).decode(), other_root, 1),
        signed.replace(ORIGIN + "\n", "anchorline.test/other\n", 1),
        signed.replace("\n\n", "\nextension\n\n", 1),
    ):
        assert forged != signed
        with pytest.raises(NoteVerificationError):
            verify_checkpoint(forged, [signer.verifier])


def test_unknown_keys_are_ignored_and_known_bad_ones_reject(
    signer: EcdsaNoteSigner, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    cp = _checkpoint(3)
    other_key = ec.generate_private_key(ec.SECP256R1())
    witness = EcdsaNoteSigner("witness.test/w1", other_key.public_key(), EcdsaSigner(other_key))
    signed = sign_note(cp.to_text(), [signer, witness])
    # Only the witness is trusted: the gateway's signature is ignored, the witness's verifies.
    note, good = open_note(signed, [witness.verifier])
    assert [s.name for s in good] == ["witness.test/w1"] and len(note.signatures) == 2
    # Same name, different key: ignored (name and ID must both match) -> nobody trusted signed.
    impostor = EcdsaNoteVerifier(ORIGIN, other_key.public_key())
    with pytest.raises(NoteVerificationError, match="no trusted key"):
        open_note(sign_note(cp.to_text(), [signer]), [impostor])
    # A known key whose signature is bad rejects the whole note, even if another verifies.
    bad = SignedNote(cp.to_text(), (NoteSignature(ORIGIN, signer.key_id, b"\x30\x00"),))
    both = SignedNote(cp.to_text(), (*SignedNote.parse(signed).signatures, *bad.signatures))
    with pytest.raises(NoteVerificationError, match="does not verify"):
        open_note(both.to_text(), [signer.verifier, witness.verifier])


def test_origin_is_pinned(signer: EcdsaNoteSigner) -> None:
    other = Checkpoint("anchorline.test/other", 5, _checkpoint().root_hash)
    signed_other = sign_checkpoint(other, signer)
    other_verifier = EcdsaNoteVerifier("anchorline.test/other", signer.verifier.public_key)
    with pytest.raises(CheckpointFormatError, match=r"not 'anchorline\.test/marketplace'"):
        verify_checkpoint(signed_other, [other_verifier], origin=ORIGIN)


def test_origin_mismatch_with_untrusted_name_is_a_verification_error(
    signer: EcdsaNoteSigner,
) -> None:
    signed = sign_checkpoint(_checkpoint(), signer)
    wrong_name = EcdsaNoteVerifier("x", signer.verifier.public_key)
    with pytest.raises(NoteVerificationError):
        open_note(signed, [wrong_name])


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n",  # two lines
        "origin\n05\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # leading zero
        "origin\n-5\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",
        "origin\n5\n" + base64.b64encode(b"\x00" * 31).decode() + "\n",  # 31-byte root
        "origin\n5\nnot base64!\n",
        "origin\n5\n" + base64.b64encode(b"\x00" * 32).decode().rstrip("=") + "\n",  # no padding
        "\n5\n" + base64.b64encode(b"\x00" * 32).decode() + "\n",  # empty origin
        "origin\n5\n" + base64.b64encode(b"\x00" * 32).decode(),  # no final newline
    ],
)
def test_malformed_checkpoint_text(text: str) -> None:
    with pytest.raises(CheckpointFormatError):
        Checkpoint.from_text(text)


def test_size_zero_is_the_empty_tree() -> None:
    cp = Checkpoint(ORIGIN, 0, RFC6962_SHA256.empty_root())
    assert cp.to_text().split("\n")[1] == "0"
    assert Checkpoint.from_text(cp.to_text()) == cp


@pytest.mark.parametrize(
    "note",
    [
        b"\xff\xfe not utf-8\n\n\xe2\x80\x94 a AAAAAAA=\n",
        "text\n\n— name AAAAAAA=",  # no final newline
        "text\n— name AAAAAAA=\n",  # no blank line
        "text\n\n",  # no signatures
        "text\n\n- name AAAAAAA=\n",  # hyphen, not em dash
        "text\n\n— na+me AAAAAAA=\n",  # '+' in the key name
        "text\n\n— name AAAA\n",  # fewer than 5 bytes
        "text\n\n— name AAAAAAA= extra\n",
        "te\txt\n\n— name AAAAAAA=\n",  # control character
        "text\n\n" + "— name AAAAAAA=\n" * 65,  # too many signatures
    ],
)
def test_malformed_notes(note: str | bytes) -> None:
    with pytest.raises(NoteFormatError):
        SignedNote.parse(note)


def test_note_text_may_hold_blank_lines(signer: EcdsaNoteSigner) -> None:
    # The signatures start after the *last* blank line.
    text = "first\n\nsecond\n"
    signed = sign_note(text, [signer])
    note, good = open_note(signed, [signer.verifier])
    assert note.text == text and len(good) == 1


def test_signer_checks() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(NoteKeyError):
        EcdsaNoteSigner("has space", key.public_key(), EcdsaSigner(key))
    with pytest.raises(NoteKeyError):
        EcdsaNoteVerifier("k", ec.generate_private_key(ec.SECP256K1()).public_key())
    with pytest.raises(NoteFormatError):
        sign_note("no newline", [EcdsaNoteSigner("k", key.public_key(), EcdsaSigner(key))])
    with pytest.raises(NoteKeyError):
        sign_note("text\n", [])


def test_origin_that_cannot_be_a_key_name_keeps_the_signers_name(
    signer: EcdsaNoteSigner,
) -> None:
    # Origins may contain spaces (Rekor's do); key names may not.
    cp = Checkpoint("anchorline.test - 42", 5, _checkpoint().root_hash)
    signed = sign_checkpoint(cp, signer)
    assert SignedNote.parse(signed).signatures[0].name == ORIGIN
    assert verify_checkpoint(signed, [signer.verifier]) == cp


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parsing_arbitrary_text_fails_cleanly_or_round_trips(text: str) -> None:
    try:
        note = SignedNote.parse(text)
    except NoteFormatError:
        return
    assert SignedNote.parse(note.to_text()) == note


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z0-9./-]{1,40}", fullmatch=True),
    st.integers(0, 2**63),
    st.binary(min_size=32, max_size=32),
    st.lists(st.from_regex(r"[ -~]{1,30}", fullmatch=True), max_size=3),
)
def test_checkpoint_text_round_trips(
    origin: str, size: int, root_hash: bytes, extensions: list[str]
) -> None:
    cp = Checkpoint(origin, size, root_hash, tuple(extensions))
    assert Checkpoint.from_text(cp.to_text()) == cp
