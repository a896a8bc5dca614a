"""X.509 identities: parsing, Fabric CA attributes, and verification against MSPs.

Public API (others depend on it; keep it stable):

``load_certificate(data: bytes | str) -> x509.Certificate``
    One certificate from PEM (text or bytes) or DER. Raises
    :class:`~gateway.identity.errors.CertificateParseError` when the bytes hold none.
``load_certificates(data: bytes | str) -> list[x509.Certificate]``
    Every certificate of a PEM bundle (or the one DER certificate).
``fingerprint(cert) -> str``
    Lower-case hex SHA-256 of the certificate's DER encoding (64 characters).
``attributes(cert) -> dict[str, str]``
    The attributes Fabric CA writes into an enrolment certificate, extension
    OID ``1.2.3.4.5.6.7.8.1`` holding JSON ``{"attrs": {...}}``; ``{}`` when the
    extension is absent. Raises ``CertificateParseError`` if it is present but is
    not that JSON shape.
``role(cert) -> str | None``
    The ``anchorline.role`` attribute (``member``, ``auditor``, ``admin``…), or None.
``TrustStore``
    The CA certificates (roots and intermediates) and CRLs of one or more MSPs,
    keyed by MSP id. Build it with ``TrustStore.from_msp_dirs({"Org1MSP": path})``
    (each MSP folder's ``cacerts/``, ``intermediatecerts/`` and ``crls/``),
    ``store.add_msp_dir(msp_id, path)`` or ``store.add_ca(msp_id, ca_pem, crls=...)``.
    CRLs read from folders are re-read when their files change, so a revocation
    is honoured without a restart.
``TrustStore.refresh_crls() -> int`` and ``TrustStore.crl_generation``
    Re-read the CRL folders whose files changed (one directory scan per MSP);
    the generation grows each time any CRL set is re-read, by this call, by
    a ``verify`` or by ``set_channel_crls``, so a watcher that remembers it
    never misses a change.
``TrustStore.set_channel_crls(msp_id, crls) -> bool``
    The CRLs the channel configuration carries for ``msp_id`` (its MSP's
    ``revocation_list``), honoured beside the folder's own; replaced by each
    call. False (nothing changed) for the same list again or an MSP this store
    does not trust.
``TrustStore.verify(cert, *, at=None, msp_id=None) -> VerifiedIdentity``
    Checks, in this order: that the certificate chains (name and signature) to a
    CA of a trusted MSP (of ``msp_id`` only, when given), that it and every
    certificate of its chain are within their validity at ``at`` (default: now,
    UTC), that its key usage includes digitalSignature, and that no certificate
    of the chain is on its issuer's CRL with a revocation date at or before
    ``at`` (a later revocation does not undo what was anchored before it: see
    docs/proof-format.md, "Valid at the time"). Each failure raises a subclass of
    :class:`~gateway.identity.errors.CertificateRejected` whose message names the
    reason: ``UnknownCertificateAuthority``, ``BadCertificateChain``,
    ``CertificateExpired``, ``CertificateNotYetValid``,
    ``NoDigitalSignatureUsage``, ``CertificateRevoked``.
``VerifiedIdentity``
    ``msp_id``, ``role``, ``fingerprint``, ``subject`` (RFC 4514 string),
    ``not_after`` (aware UTC datetime), ``enrollment_id`` (``hf.EnrollmentID`` or
    the subject's CN) and ``certificate``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.identity.errors import (
    BadCertificateChain,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateParseError,
    CertificateRevoked,
    MspFolderError,
    NoDigitalSignatureUsage,
    UnknownCertificateAuthority,
)

#: Fabric CA's attribute extension (``attrmgr`` in fabric-ca).
ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ROLE_ATTRIBUTE = "anchorline.role"
ENROLLMENT_ID_ATTRIBUTE = "hf.EnrollmentID"

_PEM_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_PEM_CRL_MARKER = b"-----BEGIN X509 CRL-----"
# A chain longer than this is a loop or an attack, not an MSP.
_MAX_CHAIN_DEPTH = 8
# Verified chains remembered; the cache is simply emptied when full.
_CHAIN_CACHE_SIZE = 4096


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Every certificate in ``data`` (a PEM bundle, or one DER certificate)."""
    raw = _as_bytes(data)
    try:
        if _PEM_CERT_MARKER in raw:
            return x509.load_pem_x509_certificates(raw)
        return [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise CertificateParseError(
            f"not an X.509 certificate in PEM or DER form ({exc})"
        ) from None


def load_certificate(data: bytes | str) -> x509.Certificate:
    """The one certificate in ``data`` (PEM or DER); the first if a bundle holds several."""
    return load_certificates(data)[0]


def fingerprint(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def attributes(cert: x509.Certificate) -> dict[str, str]:
    """Fabric CA attributes of an enrolment certificate (``{}`` when it has none)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CertificateParseError(
            f"attribute extension {ATTRIBUTES_OID.dotted_string} is not JSON"
        ) from None
    attrs = doc.get("attrs") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        raise CertificateParseError(
            f'attribute extension {ATTRIBUTES_OID.dotted_string} lacks an "attrs" object'
        )
    return {str(k): str(v) for k, v in attrs.items()}


def role(cert: x509.Certificate) -> str | None:
    """The ``anchorline.role`` attribute, or None when the certificate carries none."""
    return attributes(cert).get(ROLE_ATTRIBUTE)


def common_name(cert: x509.Certificate) -> str:
    """The subject's first CN, or ``""``."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclasses.dataclass(frozen=True)
class VerifiedIdentity:
    """A certificate that passed :meth:`TrustStore.verify`."""

    msp_id: str
    role: str | None
    fingerprint: str
    subject: str
    not_after: dt.datetime
    enrollment_id: str
    certificate: x509.Certificate = dataclasses.field(compare=False, repr=False)


def _signed_by(
    cert: x509.Certificate | x509.CertificateRevocationList, issuer: x509.Certificate
) -> bool:
    """Whether ``issuer``'s key made ``cert``'s signature (names are checked by the caller)."""
    key = issuer.public_key()
    if isinstance(cert, x509.CertificateRevocationList):
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            return False
        return cert.is_signature_valid(key)
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _key_usage_error(cert: x509.Certificate) -> str | None:
    """Why ``cert`` may not sign, or None when its key usage allows digital signatures."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return f"no digital-signature key usage: {_describe(cert)} has no key usage extension"
    if not usage.digital_signature:
        return (
            f"no digital-signature key usage: the key usage of {_describe(cert)} does not "
            "include digitalSignature"
        )
    return None


@dataclasses.dataclass
class _Chained:
    """What is known of a certificate once its chain verified (it cannot change)."""

    msp_id: str
    chain: list[x509.Certificate]
    usage_error: str | None
    identity: VerifiedIdentity | None = None


@dataclasses.dataclass
class _Msp:
    msp_id: str
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    crls: list[x509.CertificateRevocationList]
    folder: Path | None = None
    # From the channel configuration's MSP (revocation_list), kept apart from the
    # folder's so that re-reading one does not drop the other.
    channel_crls: list[x509.CertificateRevocationList] = dataclasses.field(default_factory=list)
    channel_crl_bytes: tuple[bytes, ...] = ()
    # (name, mtime_ns, size) of the CRL files last read, to re-read them on change.
    crl_stamp: tuple[tuple[str, int, int], ...] = ()
    # Serial -> revocation date, per issuing CA certificate, from CRLs that CA signed.
    revoked: dict[x509.Certificate, dict[int, dt.datetime]] = dataclasses.field(
        default_factory=dict
    )

    def cas(self) -> list[x509.Certificate]:
        return [*self.roots, *self.intermediates]

    def index_crls(self) -> None:
        """Rebuild :attr:`revoked` from the CRLs whose signature a CA of this MSP made."""
        revoked: dict[x509.Certificate, dict[int, dt.datetime]] = {}
        for crl in (*self.crls, *self.channel_crls):
            for ca in self.cas():
                if crl.issuer == ca.subject and _signed_by(crl, ca):
                    entries = revoked.setdefault(ca, {})
                    for entry in crl:
                        entries[entry.serial_number] = entry.revocation_date_utc
        self.revoked = revoked


def _read_pem_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _load_crl(raw: bytes, where: str) -> list[x509.CertificateRevocationList]:
    try:
        if _PEM_CRL_MARKER in raw:
            crls = []
            for chunk in raw.split(_PEM_CRL_MARKER)[1:]:
                crls.append(x509.load_pem_x509_crl(_PEM_CRL_MARKER + chunk))
            return crls
        return [x509.load_der_x509_crl(raw)]
    except ValueError as exc:
        raise MspFolderError(f"{where}: not a CRL in PEM or DER form ({exc})") from None


def _crl_stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap fingerprint of ``crls/``: one directory scan, one stat per file."""
    stamps = []
    try:
        with os.scandir(folder / "crls") as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                stamps.append((entry.name, st.st_mtime_ns, st.st_size))
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted(stamps))


class TrustStore:
    """Trusted CAs and CRLs of one or more MSPs, keyed by MSP id. Thread-safe."""

    def __init__(self) -> None:
        self._msps: dict[str, _Msp] = {}
        self._lock = threading.Lock()
        # Certificate -> (MSP id, chain) already verified (names and signatures).
        # Only what cannot change for a given certificate and CA set is cached;
        # validity times, key usage and revocation are checked on every call.
        self._chains: dict[x509.Certificate, _Chained] = {}
        self._crl_generation = 0

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_msp_dirs(cls, dirs: Mapping[str, Path | str]) -> TrustStore:
        """A store holding each ``{msp_id: msp_folder}``."""
        store = cls()
        for msp_id, folder in dirs.items():
            store.add_msp_dir(msp_id, folder)
        return store

    def add_msp_dir(self, msp_id: str, folder: Path | str) -> None:
        """Trust the CAs of an MSP folder (``cacerts/``, ``intermediatecerts/``, ``crls/``)."""
        folder = Path(folder)
        roots = self._certs_in(folder / "cacerts")
        if not roots:
            raise MspFolderError(
                f"MSP folder {folder} for {msp_id} has no CA certificate in cacerts/"
            )
        intermediates = self._certs_in(folder / "intermediatecerts")
        msp = _Msp(msp_id, roots, intermediates, [], folder=folder)
        self._read_crls(msp)
        with self._lock:
            self._msps[msp_id] = msp
            self._chains.clear()

    def add_ca(
        self,
        msp_id: str,
        ca_cert: bytes | str | x509.Certificate,
        *,
        intermediates: Iterable[bytes | str | x509.Certificate] = (),
        crls: Iterable[bytes | str | Path | x509.CertificateRevocationList] = (),
    ) -> None:
        """Trust one more root CA (and optional intermediates and CRLs) for ``msp_id``."""
        root = ca_cert if isinstance(ca_cert, x509.Certificate) else load_certificate(ca_cert)
        inters = [
            c if isinstance(c, x509.Certificate) else load_certificate(c) for c in intermediates
        ]
        loaded: list[x509.CertificateRevocationList] = []
        for crl in crls:
            if isinstance(crl, x509.CertificateRevocationList):
                loaded.append(crl)
            elif isinstance(crl, Path):
                loaded.extend(_load_crl(crl.read_bytes(), str(crl)))
            else:
                loaded.extend(_load_crl(_as_bytes(crl), "CRL"))
        with self._lock:
            msp = self._msps.setdefault(msp_id, _Msp(msp_id, [], [], []))
            msp.roots.append(root)
            msp.intermediates.extend(inters)
            msp.crls.extend(loaded)
            msp.index_crls()
            self._chains.clear()

    @staticmethod
    def _certs_in(folder: Path) -> list[x509.Certificate]:
        certs: list[x509.Certificate] = []
        for path in _read_pem_files(folder):
            try:
                certs.extend(load_certificates(path.read_bytes()))
            except CertificateParseError as exc:
                raise MspFolderError(f"{path}: {exc.message}") from None
        return certs

    def _read_crls(self, msp: _Msp) -> None:
        assert msp.folder is not None
        stamp = _crl_stamp(msp.folder)
        crls: list[x509.CertificateRevocationList] = []
        for path in _read_pem_files(msp.folder / "crls"):
            try:
                crls.extend(_load_crl(path.read_bytes(), str(path)))
            except FileNotFoundError:
                continue
        msp.crls = crls
        msp.crl_stamp = stamp
        msp.index_crls()
        self._crl_generation += 1

    def reload(self) -> None:
        """Re-read the CRLs of every MSP added from a folder."""
        with self._lock:
            for msp in self._msps.values():
                if msp.folder is not None:
                    self._read_crls(msp)

    def _refresh_crls(self, msp: _Msp) -> None:
        if msp.folder is not None and _crl_stamp(msp.folder) != msp.crl_stamp:
            # A CRL caught half-written by a non-atomic writer: keep the CRLs already
            # read and try again on the next call (the stamp is left unchanged).
            with contextlib.suppress(MspFolderError):
                self._read_crls(msp)

    def refresh_crls(self) -> int:
        """Re-read the CRLs of the MSP folders whose ``crls/`` changed; returns
        :attr:`crl_generation` afterwards."""
        with self._lock:
            for msp in self._msps.values():
                self._refresh_crls(msp)
            return self._crl_generation

    def set_channel_crls(self, msp_id: str, crls: Iterable[bytes]) -> bool:
        """Honour ``crls`` (PEM or DER, as the channel configuration's MSP carries them)
        for ``msp_id`` from now on, in place of the channel CRLs set before; see the
        module docstring. Raises ``MspFolderError`` for bytes that are no CRL (the
        CRLs set before stay)."""
        raw = tuple(bytes(c) for c in crls)
        with self._lock:
            msp = self._msps.get(msp_id)
            if msp is None or raw == msp.channel_crl_bytes:
                return False
            loaded: list[x509.CertificateRevocationList] = []
            for i, crl in enumerate(raw):
                loaded.extend(_load_crl(crl, f"channel CRL {i} of {msp_id}"))
            msp.channel_crls = loaded
            msp.channel_crl_bytes = raw
            msp.index_crls()
            self._crl_generation += 1
            return True

    @property
    def crl_generation(self) -> int:
        """Grows by one each time the CRLs of an MSP folder are (re-)read."""
        return self._crl_generation

    @property
    def msp_ids(self) -> tuple[str, ...]:
        """The MSP ids this store trusts, sorted."""
        with self._lock:
            return tuple(sorted(self._msps))

    def root_certificates(self, msp_id: str) -> tuple[x509.Certificate, ...]:
        """The root CA certificates of one MSP (``()`` for an unknown MSP)."""
        with self._lock:
            msp = self._msps.get(msp_id)
            return tuple(msp.roots) if msp else ()

    # -- verifying ------------------------------------------------------------------------

    def verify(
        self,
        cert: x509.Certificate | bytes | str,
        *,
        at: dt.datetime | None = None,
        msp_id: str | None = None,
    ) -> VerifiedIdentity:
        """Check ``cert`` against the trusted MSPs; see the module docstring for the order."""
        if not isinstance(cert, x509.Certificate):
            cert = load_certificate(cert)
        when = at or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        with self._lock:
            if msp_id is not None and msp_id not in self._msps:
                raise UnknownCertificateAuthority(
                    f"MSP {msp_id!r} is not trusted here (trusted: {', '.join(sorted(self._msps))})"
                )
            cached = self._chains.get(cert)
            if cached is None or (msp_id is not None and cached.msp_id != msp_id):
                candidates = (
                    [self._msps[msp_id]] if msp_id is not None else list(self._msps.values())
                )
                found_msp, chain = self._chain(cert, candidates, msp_id)
                cached = _Chained(found_msp.msp_id, chain, _key_usage_error(cert))
                if len(self._chains) >= _CHAIN_CACHE_SIZE:
                    self._chains.clear()
                self._chains[cert] = cached
            msp = self._msps[cached.msp_id]
            self._refresh_crls(msp)
            revoked = msp.revoked
        self._check_times(cert, cached.chain, when)
        if cached.usage_error is not None:
            raise NoDigitalSignatureUsage(cached.usage_error)
        self._check_revocation(cert, cached.chain, revoked, when)
        if cached.identity is None:
            attrs = attributes(cert)
            cached.identity = VerifiedIdentity(
                msp_id=cached.msp_id,
                role=attrs.get(ROLE_ATTRIBUTE),
                fingerprint=fingerprint(cert),
                subject=cert.subject.rfc4514_string(),
                not_after=cert.not_valid_after_utc,
                enrollment_id=attrs.get(ENROLLMENT_ID_ATTRIBUTE) or common_name(cert),
                certificate=cert,
            )
        return cached.identity

    @staticmethod
    def _chain(
        cert: x509.Certificate, candidates: list[_Msp], msp_id: str | None
    ) -> tuple[_Msp, list[x509.Certificate]]:
        """The MSP and the chain ``[issuer, ..., root]`` that signed ``cert``."""
        bad_signature: str | None = None
        for msp in candidates:
            chain: list[x509.Certificate] = []
            current = cert
            cas = msp.cas()
            for _ in range(_MAX_CHAIN_DEPTH):
                issuers = [ca for ca in cas if ca.subject == current.issuer]
                if not issuers:
                    break
                signer = next((ca for ca in issuers if _signed_by(current, ca)), None)
                if signer is None:
                    bad_signature = (
                        f"certificate {_describe(current)} names {current.issuer.rfc4514_string()}"
                        f" of {msp.msp_id} as issuer, but its signature does not verify with "
                        "that CA's key"
                    )
                    break
                chain.append(signer)
                if signer in msp.roots:
                    return msp, chain
                current = signer
        if bad_signature is not None:
            raise BadCertificateChain(f"bad certificate chain: {bad_signature}")
        where = f"MSP {msp_id}" if msp_id else "any trusted MSP"
        raise UnknownCertificateAuthority(
            f"unknown CA: issuer {cert.issuer.rfc4514_string()} of {_describe(cert)} is not a "
            f"CA of {where}"
        )

    @staticmethod
    def _check_times(
        cert: x509.Certificate, chain: list[x509.Certificate], when: dt.datetime
    ) -> None:
        stamp = when.isoformat(timespec="seconds")
        if when < cert.not_valid_before_utc:
            raise CertificateNotYetValid(
                f"certificate not yet valid: {_describe(cert)} is valid from "
                f"{cert.not_valid_before_utc.isoformat()}, checked at {stamp}"
            )
        if when > cert.not_valid_after_utc:
            raise CertificateExpired(
                f"certificate expired: {_describe(cert)} was valid until "
                f"{cert.not_valid_after_utc.isoformat()}, checked at {stamp}"
            )
        for ca in chain:
            if not ca.not_valid_before_utc <= when <= ca.not_valid_after_utc:
                raise BadCertificateChain(
                    f"bad certificate chain: CA certificate {_describe(ca)} is outside its "
                    f"validity ({ca.not_valid_before_utc.isoformat()} to "
                    f"{ca.not_valid_after_utc.isoformat()}) at {stamp}"
                )

    @staticmethod
    def _check_revocation(
        cert: x509.Certificate,
        chain: list[x509.Certificate],
        revoked: dict[x509.Certificate, dict[int, dt.datetime]],
        when: dt.datetime,
    ) -> None:
        # Each certificate of the chain is checked on the CRL its own issuer signed.
        # "Valid at the time": a revocation dated after ``when`` (an anchor's time, for an
        # old proof) does not undo what the certificate signed before it.
        subjects = [cert, *chain[:-1]]
        for subject, issuer in zip(subjects, chain, strict=True):
            since = revoked.get(issuer, {}).get(subject.serial_number)
            if since is not None and since <= when:
                raise CertificateRevoked(
                    f"certificate revoked: {_describe(subject)} (serial "
                    f"{subject.serial_number:x}) is on the CRL of "
                    f"{issuer.subject.rfc4514_string()} since {since.isoformat()}"
                )
