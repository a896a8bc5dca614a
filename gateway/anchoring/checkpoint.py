"""Signed checkpoints of a channel's log: C2SP tlog-checkpoint in a C2SP signed note.

A checkpoint says "the log ``origin`` had ``size`` leaves with this RFC 6962
root", signed by the gateway, so a member or witness who keeps one can later
ask for a consistency proof and check that today's log extends it
(https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note)::

    anchorline.example/marketplace
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — anchorline.example/marketplace 0h3xVjBFAiEA…

Signatures use the signed-note ECDSA type ``0x02`` (the one
github.com/transparency-dev/witness and Sigstore's Rekor implement), which
fits the gateway's Fabric identity, an ECDSA P-256 key:

- the signature is ASN.1 DER ECDSA over SHA-256 of the note text (the
  gateway's signer makes it low-S, which verifiers accept like any other);
- the key ID is the first four bytes of SHA-256 of the public key's DER
  SubjectPublicKeyInfo (the rule the signed-note spec gives for type 0x02,
  unlike Ed25519 keys whose ID also hashes the name and type byte);
- a verifier key is written ``<name>+<key ID, 8 hex digits>+<base64(0x02 ||
  DER SPKI)>``, as transparency-dev/formats reads it.

The key name of the gateway's signature is the checkpoint's origin (the spec's
SHOULD), so one gateway key signs the checkpoints of every channel, each under
its own origin.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.signing import Signer, sign_message, verify
from gateway.merkle.errors import (
    CheckpointFormatError,
    NoteFormatError,
    NoteKeyError,
    NoteVerificationError,
)

#: Signature type byte of ECDSA note signatures (C2SP signed-note).
SIG_TYPE_ECDSA = 0x02
EM_DASH = "\u2014"
#: Notes with more signatures are refused (the spec asks verifiers to accept at least 16).
MAX_SIGNATURES = 64
#: Refuse notes larger than this before parsing them.
MAX_NOTE_BYTES = 1 << 16

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _is_valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _b64decode_strict(value: str, what: str, error: type[Exception]) -> bytes:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise error(f"{what} is not standard base64: {value[:60]!r}") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise error(f"{what} is not in canonical base64 form: {value[:60]!r}")
    return raw


# -- notes ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 32-bit key ID and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def to_line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{EM_DASH} {self.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclasses.dataclass(frozen=True)
class SignedNote:
    """A note's text (ending in a newline) and its signature lines, unverified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        """The note as sent on the wire: text, blank line, signature lines."""
        return self.text + "\n" + "".join(sig.to_line() for sig in self.signatures)

    @classmethod
    def parse(cls, data: str | bytes) -> SignedNote:
        """Split a signed note into text and signatures; checks the form only.

        Raises :class:`NoteFormatError` for anything the signed-note spec
        forbids: invalid UTF-8, control characters, a missing blank line, a
        signature line of the wrong shape, or more than :data:`MAX_SIGNATURES`.
        """
        if isinstance(data, bytes):
            if len(data) > MAX_NOTE_BYTES:
                raise NoteFormatError(f"note is {len(data)} bytes; the limit is {MAX_NOTE_BYTES}")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise NoteFormatError("note is not valid UTF-8") from None
        if len(data.encode("utf-8")) > MAX_NOTE_BYTES:
            raise NoteFormatError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        if _CONTROL.search(data):
            raise NoteFormatError("note contains a control character other than newline")
        if not data.endswith("\n"):
            raise NoteFormatError("note does not end with a newline")
        # The text is separated from the signatures by the note's last blank line.
        cut = data.rfind("\n\n")
        if cut < 0:
            raise NoteFormatError("note has no blank line before its signatures")
        text, sig_block = data[: cut + 1], data[cut + 2 :]
        lines = sig_block.split("\n")[:-1]
        if not lines:
            raise NoteFormatError("note has no signature lines")
        if len(lines) > MAX_SIGNATURES:
            raise NoteFormatError(
                f"note has {len(lines)} signatures; the limit is {MAX_SIGNATURES}"
            )
        sigs = []
        for line in lines:
            prefix = EM_DASH + " "
            if not line.startswith(prefix):
                raise NoteFormatError(
                    f"signature line does not start with an em dash: {line[:60]!r}"
                )
            parts = line[len(prefix) :].split(" ")
            if len(parts) != 2 or not _is_valid_key_name(parts[0]):
                raise NoteFormatError(f"malformed signature line: {line[:60]!r}")
            blob = _b64decode_strict(parts[1], "signature", NoteFormatError)
            if len(blob) < 5:
                raise NoteFormatError(f"signature of {parts[0]} is too short ({len(blob)} bytes)")
            sigs.append(NoteSignature(parts[0], int.from_bytes(blob[:4], "big"), blob[4:]))
        return cls(text, tuple(sigs))


class NoteVerifier(Protocol):
    """A key that can check note signatures: name, key ID and ``verify``."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


def _spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ecdsa_key_id(public_key: ec.EllipticCurvePublicKey) -> int:
    """Key ID of an ECDSA note key: SHA-256(DER SPKI)[:4], big-endian."""
    return int.from_bytes(hashlib.sha256(_spki_der(public_key)).digest()[:4], "big")


_ALLOWED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class EcdsaNoteVerifier:
    """Checks type-0x02 (ECDSA over SHA-256) note signatures of one key and name."""

    def __init__(self, name: str, public_key: ec.EllipticCurvePublicKey) -> None:
        if not _is_valid_key_name(name):
            raise NoteKeyError(f"note key name {name!r} must be non-empty, without spaces or '+'")
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, _ALLOWED_CURVES
        ):
            raise NoteKeyError("ECDSA note keys must be on NIST P-256, P-384 or P-521")
        self._name = name
        self._key = public_key
        self._key_id = ecdsa_key_id(public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key

    def verify(self, text: bytes, signature: bytes) -> bool:
        # Notes are checked by witnesses and auditors, not Fabric: either S verifies.
        return verify(self._key, text, signature, require_low_s=False)

    def to_key_string(self) -> str:
        """``<name>+<key ID hex>+<base64(0x02 || DER SPKI)>``: what a witness configures."""
        blob = bytes([SIG_TYPE_ECDSA]) + _spki_der(self._key)
        return f"{self._name}+{self._key_id:08x}+{base64.b64encode(blob).decode('ascii')}"

    @classmethod
    def from_key_string(cls, key: str) -> EcdsaNoteVerifier:
        """Parse :meth:`to_key_string`'s form; the key ID must match the key."""
        parts = key.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteKeyError(f"verifier key has {len(parts)} '+'-separated parts, expected 3")
        name, hex_id, b64 = parts
        if not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
            raise NoteKeyError(f"verifier key ID {hex_id!r} is not 8 hex digits")
        blob = _b64decode_strict(b64, "verifier key", NoteKeyError)
        if len(blob) < 2 or blob[0] != SIG_TYPE_ECDSA:
            raise NoteKeyError("verifier key is not an ECDSA (type 0x02) note key")
        try:
            public_key = serialization.load_der_public_key(blob[1:])
        except ValueError:
            raise NoteKeyError("verifier key does not hold a DER public key") from None
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise NoteKeyError("verifier key is not an elliptic-curve key")
        out = cls(name, public_key)
        if out.key_id != int(hex_id, 16):
            raise NoteKeyError(
                f"verifier key ID {hex_id} does not match its key (expected {out.key_id:08x})"
            )
        return out


class EcdsaNoteSigner:
    """Signs notes with an ECDSA key held by a digest signer (the gateway identity)."""

    def __init__(self, name: str, public_key: ec.EllipticCurvePublicKey, signer: Signer) -> None:
        self.verifier = EcdsaNoteVerifier(name, public_key)
        self._signer = signer

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    def sign(self, text: str) -> NoteSignature:
        signature = sign_message(self._signer, text.encode("utf-8"))
        return NoteSignature(self.name, self.key_id, signature)

    def renamed(self, name: str) -> EcdsaNoteSigner:
        """The same key under another name (one gateway key, one origin per channel)."""
        return EcdsaNoteSigner(name, self.verifier.public_key, self._signer)


def sign_note(text: str, signers: Iterable[EcdsaNoteSigner]) -> str:
    """A signed note of ``text`` (which must end in a newline)."""
    _check_note_text(text)
    sigs = tuple(s.sign(text) for s in signers)
    if not sigs:
        raise NoteKeyError("a note needs at least one signer")
    return SignedNote(text, sigs).to_text()


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteFormatError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteFormatError("note text contains a control character other than newline")


def open_note(
    data: str | bytes, verifiers: Sequence[NoteVerifier]
) -> tuple[SignedNote, tuple[NoteSignature, ...]]:
    """Parse ``data`` and check its signatures against the trusted ``verifiers``.

    Signatures from unknown keys (name and key ID not both known) are
    ignored. Returns the note and the signatures that verified. Raises
    :class:`NoteVerificationError` when a known key's signature fails, or when
    no known key signed the note.
    """
    note = SignedNote.parse(data)
    by_key = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode("utf-8")
    good: list[NoteSignature] = []
    for sig in note.signatures:
        verifier = by_key.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, sig.signature):
            raise NoteVerificationError(
                f"the signature of {sig.name} (key {sig.key_id:08x}) does not verify: "
                "the note was altered or signed by another key; do not trust it",
                key_name=sig.name,
                key_id=f"{sig.key_id:08x}",
            )
        good.append(sig)
    if not good:
        known = ", ".join(f"{v.name}+{v.key_id:08x}" for v in verifiers) or "none"
        found = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        raise NoteVerificationError(
            f"no trusted key signed this note (trusted: {known}; signed by: {found}); "
            "configure the signer's verifier key to accept it",
        )
    return note, tuple(good)


# -- checkpoints ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _CONTROL.search(self.origin):
            raise CheckpointFormatError(
                f"checkpoint origin {self.origin!r} must be one non-empty line"
            )
        if self.size < 0:
            raise CheckpointFormatError(f"tree size must be >= 0, got {self.size}")
        if not self.root_hash:
            raise CheckpointFormatError("checkpoint root hash is empty")
        for ext in self.extensions:
            if not ext or "\n" in ext or _CONTROL.search(ext):
                raise CheckpointFormatError(f"extension line {ext!r} must be one non-empty line")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each newline-ended."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    @classmethod
    def from_text(cls, text: str, *, hash_size: int | None = 32) -> Checkpoint:
        """Parse note text as a checkpoint (strictly: decimal size without leading
        zeros, canonical base64 root of ``hash_size`` bytes, non-empty lines)."""
        if not text.endswith("\n"):
            raise CheckpointFormatError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(
                f"a checkpoint has at least 3 lines (origin, size, root); this one has {len(lines)}"
            )
        if any(not line for line in lines):
            raise CheckpointFormatError("checkpoint lines must be non-empty")
        origin, size_line, root_line, *extensions = lines
        if not _DECIMAL.fullmatch(size_line):
            raise CheckpointFormatError(
                f"tree size {size_line[:30]!r} is not a decimal number without leading zeros"
            )
        root_hash = _b64decode_strict(root_line, "root hash", CheckpointFormatError)
        if hash_size is not None and len(root_hash) != hash_size:
            raise CheckpointFormatError(
                f"root hash is {len(root_hash)} bytes; expected {hash_size}"
            )
        return cls(origin, int(size_line), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: EcdsaNoteSigner) -> str:
    """The signed note of ``checkpoint``.

    The signature's key name is the checkpoint's origin when the origin can be
    a key name (no spaces, no ``+``), as the checkpoint spec recommends;
    otherwise the signer's own name.
    """
    if signer.name != checkpoint.origin and _is_valid_key_name(checkpoint.origin):
        signer = signer.renamed(checkpoint.origin)
    return sign_note(checkpoint.to_text(), [signer])


def parse_checkpoint(
    data: str | bytes, *, hash_size: int | None = 32
) -> tuple[Checkpoint, SignedNote]:
    """Read a signed checkpoint without verifying it (to show it, or pick a verifier)."""
    note = SignedNote.parse(data)
    return Checkpoint.from_text(note.text, hash_size=hash_size), note


def verify_checkpoint(
    data: str | bytes,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    hash_size: int | None = 32,
) -> Checkpoint:
    """The checkpoint in ``data`` once a trusted key's signature on it verified.

    ``origin`` (recommended) pins the log: a checkpoint of another log, even
    signed by a trusted key, raises :class:`CheckpointFormatError`.
    """
    note, _ = open_note(data, verifiers)
    checkpoint = Checkpoint.from_text(note.text, hash_size=hash_size)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointFormatError(
            f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}",
            got=checkpoint.origin,
            want=origin,
        )
    return checkpoint
