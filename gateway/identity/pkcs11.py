"""Signing keys held in a PKCS#11 token (an HSM, a smart card, SoftHSM2 in tests).

The binding is ``python-pkcs11``: a maintained Cython wrapper with a typed,
object-level API (tokens, sessions, keys, attributes), manylinux wheels for
CPython 3.11 and no dependency beyond ``asn1crypto``.

Public API:

- :class:`TokenConfig` — the module path, token label and PIN (never shown in
  ``repr``); :meth:`TokenConfig.from_settings` reads them from
  :class:`gateway.config.Pkcs11Settings` (PIN from its file or
  ``ANCHORLINE_PKCS11_PIN``).
- :class:`Token` — a logged-in session on one token: ``Token.open(config)``,
  ``.signer(label)``, ``.generate_key(label)``, ``.describe()``, ``.close()``.
- :class:`Pkcs11Signer` — a :class:`gateway.identity.signing.Signer`: the
  token computes ECDSA P-256 over the SHA-256 digest it is given
  (``CKM_ECDSA``); the signature comes back as ``r || s`` and is DER-encoded
  and normalised to low S here. The private key never leaves the token:
  keys are generated with ``CKA_EXTRACTABLE`` false and ``CKA_SENSITIVE``
  true, and a key found with other attributes is refused.
- :func:`open_signer` — a signer that owns its own session (``close()`` ends it).

Every failure is an :class:`~gateway.identity.errors.TokenError` with its own
code (wrong PIN, no such token, no such key, no P-256, ...); nothing here
falls back to another key.

Sessions of one token are not safe for concurrent operations, so each
signer serialises its calls with a lock; a signature through SoftHSM2 takes
tens of microseconds (scripts/bench/pkcs11_sign.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from gateway.errors import InvalidInput
from gateway.identity.errors import (
    TokenError,
    TokenKeyExists,
    TokenKeyMismatch,
    TokenKeyNotFound,
    TokenModuleError,
    TokenNoP256,
    TokenNotFound,
    TokenPinIncorrect,
    TokenPinUnavailable,
    TokenSignFailed,
)
from gateway.identity.signing import low_s_from_raw

if TYPE_CHECKING:
    from gateway.config import Pkcs11Settings

#: DER of the named-curve parameters of P-256 (OID 1.2.840.10045.3.1.7): CKA_EC_PARAMS.
P256_EC_PARAMS: Final = encode_named_curve_parameters("secp256r1")
_P256_BITS: Final = 256
# (module, token label) -> (SHA-256 of the PIN that logged in, open sessions): the
# library's login state is per process, so this mirror of it is too (see Token._log_in).
_LOGINS: dict[tuple[str, str], tuple[bytes, int]] = {}
_LOGINS_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class TokenConfig:
    """Where the token is and how to log in. The PIN is never part of ``repr``."""

    module: str
    token_label: str
    pin: str = dataclasses.field(repr=False)

    @classmethod
    def from_settings(cls, settings: Pkcs11Settings) -> TokenConfig:
        """The token of the ``[pkcs11]`` settings; raises when it is not configured."""
        if not settings.module or not settings.token_label:
            raise TokenPinUnavailable(
                "no PKCS#11 token is configured: set pkcs11.module and pkcs11.token_label"
            )
        return cls(settings.module, settings.token_label, read_pin(settings))


def read_pin(settings: Pkcs11Settings) -> str:
    """The user PIN: ``ANCHORLINE_PKCS11_PIN`` (already in ``settings.pin``), else the
    first line of ``pkcs11.pin_file``. Never taken from a command line."""
    if settings.pin:
        return settings.pin
    if not settings.pin_file:
        raise TokenPinUnavailable(
            "no PIN for the PKCS#11 token: set pkcs11.pin_file or ANCHORLINE_PKCS11_PIN"
        )
    path = Path(settings.pin_file).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenPinUnavailable(f"cannot read the PIN file {path}: {exc}") from None
    pin = lines[0].strip() if lines else ""
    if not pin:
        raise TokenPinUnavailable(f"the PIN file {path} is empty")
    return pin


def _load_module(module: str) -> Any:
    if not Path(module).is_file():
        raise TokenModuleError(f"the PKCS#11 module {module} does not exist (pkcs11.module)")
    try:
        return pkcs11.lib(module)
    except (RuntimeError, OSError) as exc:
        raise TokenModuleError(f"the PKCS#11 module {module} cannot be loaded: {exc}") from None


def check_p256_mechanism(mechanisms: set[Any], min_bits: int | None, max_bits: int | None) -> None:
    """Raise :class:`TokenNoP256` unless a token with these mechanisms (and this ECDSA
    key-size range, in bits) can make P-256 keys and ECDSA signatures with them."""
    missing = [m.name for m in (Mechanism.ECDSA, Mechanism.EC_KEY_PAIR_GEN) if m not in mechanisms]
    if missing:
        raise TokenNoP256(f"the token cannot do ECDSA P-256: it lacks {', '.join(missing)}")
    low = min_bits if min_bits is not None else 0
    high = max_bits if max_bits is not None else _P256_BITS
    if not low <= _P256_BITS <= high:
        raise TokenNoP256(f"the token cannot do ECDSA P-256: its ECDSA keys are {low}-{high} bits")


def _public_from_point(ec_point_der: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(ec_point_der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TokenNoP256("the token's public key is not an elliptic-curve key")
    return key


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Token:
    """A logged-in read-write session on one token (see the module docstring)."""

    def __init__(self, config: TokenConfig, token: Any, session: Any) -> None:
        self.config = config
        self._token = token
        self._session = session
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, config: TokenConfig) -> Token:
        """Log in to the token labelled ``config.token_label`` of ``config.module``."""
        lib = _load_module(config.module)
        try:
            token = lib.get_token(token_label=config.token_label)
        except pkcs11.NoSuchToken:
            raise TokenNotFound(
                f"no token labelled {config.token_label!r} in {config.module}: check "
                "pkcs11.token_label (softhsm2-util --show-slots lists the tokens)"
            ) from None
        except pkcs11.MultipleTokensReturned:
            raise TokenNotFound(
                f"more than one token is labelled {config.token_label!r} in {config.module}"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise TokenModuleError(f"{config.module}: cannot list the tokens ({exc!r})") from None
        slot = token.slot
        try:
            mechanisms = set(slot.get_mechanisms())
            has_ecdsa = Mechanism.ECDSA in mechanisms
            info = slot.get_mechanism_info(Mechanism.ECDSA) if has_ecdsa else None
        except pkcs11.PKCS11Error as exc:
            raise TokenModuleError(
                f"{config.module}: cannot read the mechanisms ({exc!r})"
            ) from None
        check_p256_mechanism(
            mechanisms,
            info.min_key_length if info else None,
            info.max_key_length if info else None,
        )
        try:
            session = cls._log_in(config, token)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise TokenPinIncorrect(
                f"the PIN of token {config.token_label!r} is wrong (check pkcs11.pin_file or "
                "ANCHORLINE_PKCS11_PIN; repeated failures lock the token)"
            ) from None
        except pkcs11.PinLocked:
            raise TokenPinIncorrect(
                f"the user PIN of token {config.token_label!r} is locked: the security officer "
                "must reset it"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise TokenError(f"cannot log in to token {config.token_label!r}: {exc!r}") from None
        return cls(config, token, session)

    @staticmethod
    def _log_in(config: TokenConfig, token: Any) -> Any:
        # PKCS#11 login belongs to the process, not the session: while one session of
        # this token is open a second C_Login answers "already logged in" without
        # looking at the PIN. Keep the PIN's digest of that first login, so a second
        # Token with a wrong PIN is still refused instead of riding on the first.
        key = (config.module, config.token_label)
        digest = hashlib.sha256(config.pin.encode()).digest()
        with _LOGINS_LOCK:
            held = _LOGINS.get(key)
            if held is not None:
                if not hmac.compare_digest(held[0], digest):
                    raise pkcs11.PinIncorrect()
                session = token.open(rw=True)
                _LOGINS[key] = (digest, held[1] + 1)
                return session
            session = token.open(rw=True, user_pin=config.pin)
            _LOGINS[key] = (digest, 1)
            return session

    def _log_out(self) -> None:
        key = (self.config.module, self.config.token_label)
        with _LOGINS_LOCK:
            held = _LOGINS.get(key)
            if held is not None:
                if held[1] <= 1:
                    del _LOGINS[key]
                else:
                    _LOGINS[key] = (held[0], held[1] - 1)

    @property
    def label(self) -> str:
        return self.config.token_label

    def describe(self) -> dict[str, str]:
        """What ``anchorline doctor`` shows: library, token, and the key labels it holds."""
        lib = _load_module(self.config.module)
        with self._lock:
            labels = sorted(
                str(o[Attribute.LABEL])
                for o in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            )
        return {
            "module": self.config.module,
            "library": f"{lib.library_description} {_version(lib.library_version)}",
            "token": self.label,
            "manufacturer": str(self._token.manufacturer_id),
            "model": str(self._token.model),
            "serial": _text(self._token.serial),
            "keys": ", ".join(labels) or "(none)",
        }

    def _find(self, label: str, object_class: ObjectClass) -> Any:
        try:
            return self._session.get_key(object_class=object_class, label=label)
        except pkcs11.NoSuchKey:
            return None
        except pkcs11.MultipleObjectsReturned:
            raise TokenKeyNotFound(
                f"token {self.label!r} holds more than one key labelled {label!r}: "
                "give each key its own label"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise TokenError(f"cannot search token {self.label!r}: {exc!r}") from None

    def signer(
        self, label: str, *, expect: ec.EllipticCurvePublicKey | None = None
    ) -> Pkcs11Signer:
        """The signer of the P-256 key pair labelled ``label``.

        ``expect`` (the public key of the certificate the signatures will be
        checked with) must match the token's key, or :class:`TokenKeyMismatch`
        is raised: a wrong label never signs in the name of another identity.
        """
        if not label:
            raise TokenKeyNotFound("no key label given (pkcs11.key_label or --pkcs11-key)")
        with self._lock:
            private = self._find(label, ObjectClass.PRIVATE_KEY)
            if private is None:
                raise TokenKeyNotFound(
                    f"token {self.label!r} holds no private key labelled {label!r}"
                )
            public = self._find(label, ObjectClass.PUBLIC_KEY)
            if public is None:
                raise TokenKeyNotFound(
                    f"token {self.label!r} holds the private key {label!r} but not its public key"
                )
            try:
                key_type = private.key_type
                params = bytes(private[Attribute.EC_PARAMS]) if key_type == KeyType.EC else b""
                extractable = bool(private[Attribute.EXTRACTABLE])
                sensitive = bool(private[Attribute.SENSITIVE])
                point = encode_ec_public_key(public) if key_type == KeyType.EC else b""
            except pkcs11.PKCS11Error as exc:
                raise TokenError(f"cannot read key {label!r} of {self.label!r}: {exc!r}") from None
        if key_type != KeyType.EC:
            raise TokenNoP256(f"key {label!r} of token {self.label!r} is not an EC key")
        if params != P256_EC_PARAMS:
            raise TokenNoP256(
                f"key {label!r} of token {self.label!r} is not on P-256 (EC params {params.hex()})"
            )
        if extractable or not sensitive:
            raise TokenError(
                f"key {label!r} of token {self.label!r} can leave the token (CKA_EXTRACTABLE "
                f"{extractable}, CKA_SENSITIVE {sensitive}); generate a non-extractable key"
            )
        public_key = _public_from_point(point)
        if expect is not None and _spki(expect) != _spki(public_key):
            raise TokenKeyMismatch(
                f"key {label!r} of token {self.label!r} is not the key of the certificate: "
                "use the label of the key the certificate was issued for"
            )
        return Pkcs11Signer(self, label, private, public_key)

    def generate_key(self, label: str) -> Pkcs11Signer:
        """Generate a P-256 key pair labelled ``label`` in the token (non-extractable,
        sensitive, persistent). :class:`TokenKeyExists` when the label is taken."""
        if not label:
            raise InvalidInput("a key label is required")
        with self._lock:
            if self._find(label, ObjectClass.PRIVATE_KEY) is not None:
                raise TokenKeyExists(
                    f"token {self.label!r} already holds a key labelled {label!r}; "
                    "choose another label"
                )
            try:
                params = self._session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: P256_EC_PARAMS}, local=True
                )
                params.generate_keypair(
                    store=True,
                    label=label,
                    public_template={Attribute.VERIFY: True},
                    private_template={
                        Attribute.SIGN: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.SENSITIVE: True,
                        Attribute.PRIVATE: True,
                    },
                )
            except pkcs11.PKCS11Error as exc:
                raise TokenNoP256(
                    f"token {self.label!r} cannot generate a P-256 key: {exc!r}"
                ) from None
        return self.signer(label)

    def key_attributes(self, label: str) -> dict[str, bool]:
        """``extractable``, ``sensitive``, ``never_extractable`` of the private key ``label``."""
        with self._lock:
            private = self._find(label, ObjectClass.PRIVATE_KEY)
            if private is None:
                raise TokenKeyNotFound(f"token {self.label!r} holds no key labelled {label!r}")
            return {
                "extractable": bool(private[Attribute.EXTRACTABLE]),
                "sensitive": bool(private[Attribute.SENSITIVE]),
                "never_extractable": bool(private[Attribute.NEVER_EXTRACTABLE]),
            }

    def _sign(self, key: Any, digest: bytes) -> bytes:
        with self._lock:
            if self._closed:
                raise TokenSignFailed(f"the session on token {self.label!r} is closed")
            try:
                raw: bytes = key.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.PKCS11Error as exc:
                raise TokenSignFailed(
                    f"token {self.label!r} refused to sign: {exc!r}; nothing was signed"
                ) from None
        return raw

    def close(self) -> None:
        """End the session (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # A token that went away took the session with it.
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._session.close()
            self._log_out()


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _version(value: Any) -> str:
    if isinstance(value, tuple):
        return ".".join(str(v) for v in value)
    return str(value)


class Pkcs11Signer:
    """Signs 32-byte SHA-256 digests with a token's P-256 key; returns low-S DER."""

    def __init__(
        self, token: Token, label: str, key: Any, public_key: ec.EllipticCurvePublicKey
    ) -> None:
        self.token = token
        self.label = label
        self._key = key
        self._public_key = public_key
        self._owns_token = False

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    def sign(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise InvalidInput(f"expected a 32-byte SHA-256 digest, got {len(digest)} bytes")
        raw = self.token._sign(self._key, digest)
        try:
            return low_s_from_raw(raw)
        except ValueError:
            raise TokenSignFailed(
                f"token {self.token.label!r} returned a {len(raw)}-byte signature, not r || s "
                "of P-256"
            ) from None

    def close(self) -> None:
        """Close the token session when this signer opened it (:func:`open_signer`)."""
        if self._owns_token:
            self.token.close()

    def __repr__(self) -> str:
        return f"Pkcs11Signer(token={self.token.label!r}, key={self.label!r})"


def open_signer(
    config: TokenConfig, label: str, *, expect: ec.EllipticCurvePublicKey | None = None
) -> Pkcs11Signer:
    """A signer over its own session on the token; ``close()`` ends that session."""
    token = Token.open(config)
    try:
        signer = token.signer(label, expect=expect)
    except BaseException:
        token.close()
        raise
    signer._owns_token = True
    return signer
