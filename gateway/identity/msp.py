"""Fabric identities: MSP folders, PEM certificates, serialized identities.

Public API (stable; the embedded ledger and the client library import it):

- :class:`Identity` — an MSP id and an X.509 certificate. ``serialize()``
  gives the ``msp.SerializedIdentity`` bytes Fabric puts in a signature
  header (the *creator*); ``fingerprint`` is the hex SHA-256 of the
  certificate's DER encoding.
- :func:`identity_from_pem` — an :class:`Identity` from PEM (or DER) bytes.
- :func:`parse_serialized_identity` — the inverse of ``Identity.serialize()``.
- :class:`MspFolder` and :func:`load_msp` — an MSP folder in Fabric's layout:
  ``signcerts/*.pem`` (the certificate), ``keystore/*`` (the private key:
  ``*_sk`` preferred, else any key file), ``cacerts/``, ``intermediatecerts/``,
  ``tlscacerts/``. The private key is optional (a member may keep it
  elsewhere and sign offline). ``MspFolder.signer()`` gives an
  :class:`~gateway.identity.signing.EcdsaSigner`.
- :func:`load_private_key` — a P-256 key from PEM bytes.

Errors: :class:`~gateway.identity.errors.MspFolderError` for a missing or
incomplete folder, :class:`~gateway.identity.errors.CertificateParseError`
for bytes that hold no certificate.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.msp import identities_pb2
from google.protobuf.message import DecodeError

from gateway.errors import InvalidInput
from gateway.identity.errors import CertificateParseError, MspFolderError
from gateway.identity.signing import EcdsaSigner


def _parse_certificate(data: bytes) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateParseError(f"not an X.509 certificate (PEM or DER): {exc}") from None


@dataclasses.dataclass(frozen=True)
class Identity:
    """An MSP member: its MSP id and its certificate (PEM, normalised)."""

    msp_id: str
    certificate_pem: bytes

    @functools.cached_property
    def certificate(self) -> x509.Certificate:
        return _parse_certificate(self.certificate_pem)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the certificate's DER encoding."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise CertificateParseError("the certificate does not hold an elliptic-curve key")
        return key

    def serialize(self) -> bytes:
        """``msp.SerializedIdentity`` bytes: what Fabric calls the creator."""
        return _serialize(self.msp_id, self.certificate_pem)


@functools.lru_cache(maxsize=64)
def _serialize(msp_id: str, certificate_pem: bytes) -> bytes:
    message = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=certificate_pem)
    return bytes(message.SerializeToString(deterministic=True))


def identity_from_pem(msp_id: str, certificate: bytes) -> Identity:
    """An identity from PEM or DER certificate bytes; the PEM is normalised."""
    if not msp_id:
        raise InvalidInput("an MSP id is required (e.g. Org1MSP)")
    cert = _parse_certificate(certificate)
    return Identity(msp_id, cert.public_bytes(serialization.Encoding.PEM))


def parse_serialized_identity(data: bytes) -> Identity:
    """The :class:`Identity` in ``msp.SerializedIdentity`` bytes (a creator)."""
    message = identities_pb2.SerializedIdentity()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise CertificateParseError(f"not a serialized identity: {exc}") from None
    _parse_certificate(bytes(message.id_bytes))  # refuse a creator that holds no certificate
    # Keep the creator's own PEM bytes: signature checks and lookups compare them as sent.
    return Identity(str(message.mspid), bytes(message.id_bytes))


def load_private_key(pem: bytes, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM (PKCS#8 or SEC1)."""
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a usable PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the private key is not a P-256 elliptic-curve key")
    return key


@dataclasses.dataclass(frozen=True)
class MspFolder:
    """What an MSP folder holds. ``private_key`` is None when the keystore is absent."""

    path: Path
    identity: Identity
    private_key: ec.EllipticCurvePrivateKey | None
    ca_certs: tuple[bytes, ...] = ()
    intermediate_certs: tuple[bytes, ...] = ()
    tls_ca_certs: tuple[bytes, ...] = ()

    @property
    def msp_id(self) -> str:
        return self.identity.msp_id

    def signer(self) -> EcdsaSigner:
        """A signer over the folder's private key."""
        if self.private_key is None:
            raise MspFolderError(
                f"{self.path}/keystore holds no private key: sign offline or supply the key"
            )
        return EcdsaSigner(self.private_key)


def _read_pems(folder: Path) -> tuple[bytes, ...]:
    if not folder.is_dir():
        return ()
    return tuple(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def _find_key_file(keystore: Path) -> Path | None:
    if not keystore.is_dir():
        return None
    files = sorted(p for p in keystore.iterdir() if p.is_file())
    preferred = [p for p in files if p.name.endswith("_sk")]
    for candidate in preferred + files:
        if b"PRIVATE KEY" in candidate.read_bytes()[:200]:
            return candidate
    return None


def load_msp(msp_dir: str | Path, msp_id: str, *, require_key: bool = False) -> MspFolder:
    """Load an MSP folder (Fabric layout) for the member of ``msp_id``.

    The certificate is the first file of ``signcerts/`` (sorted by name).
    ``require_key`` makes a missing private key an error.
    """
    path = Path(msp_dir).expanduser()
    signcerts = path / "signcerts"
    if not signcerts.is_dir():
        raise MspFolderError(f"{path} is not an MSP folder: {signcerts} is missing")
    certs = sorted(p for p in signcerts.iterdir() if p.is_file())
    if not certs:
        raise MspFolderError(f"{signcerts} holds no certificate")
    identity = identity_from_pem(msp_id, certs[0].read_bytes())
    key_file = _find_key_file(path / "keystore")
    private_key = load_private_key(key_file.read_bytes()) if key_file else None
    if private_key is None and require_key:
        raise MspFolderError(f"{path}/keystore holds no private key")
    if private_key is not None:
        ours = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = identity.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if ours != theirs:
            raise MspFolderError(
                f"{key_file} does not match the certificate {certs[0]}: re-enrol the identity"
            )
    return MspFolder(
        path=path,
        identity=identity,
        private_key=private_key,
        ca_certs=_read_pems(path / "cacerts"),
        intermediate_certs=_read_pems(path / "intermediatecerts"),
        tls_ca_certs=_read_pems(path / "tlscacerts"),
    )
