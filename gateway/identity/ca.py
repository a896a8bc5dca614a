"""The built-in CA: org CAs and identities for the embedded ledger, in Fabric's MSP layout.

Used when no Fabric install is present (``anchorline network enroll/revoke`` in
embedded mode, the embedded ledger's peers, tests). What it writes matches what
Fabric CA v1.5 writes, so everything that reads an MSP folder works on both:

- one ECDSA P-256 root CA per org (``CN=ca.<org>``), self-signed, 10 years;
- enrolment certificates with key usage digitalSignature (critical), the
  identity type as OU (``client``, ``peer``, ``admin``, ``orderer``, the NodeOUs
  classification), and Fabric CA's attribute extension OID 1.2.3.4.5.6.7.8.1
  holding ``{"attrs": {"anchorline.role": ..., "hf.Affiliation": "",
  "hf.EnrollmentID": <name>, "hf.Type": <type>}}``;
- revocation writes a CRL signed by the org CA into the org MSP's ``crls/``.

Public API:

``EmbeddedCA(root)``
    All state under ``root`` (normally ``Settings.embedded_dir / "ca"``)::

        <root>/<Org>/ca/{ca-cert.pem, ca-key.pem, registry.json}
        <root>/<Org>/msp/{cacerts/, tlscacerts/, crls/, config.yaml}      the org (channel) MSP
        <root>/<Org>/users/<name>/msp/{signcerts/, keystore/, cacerts/, tlscacerts/, config.yaml}
        <root>/<Org>/peers/<name>/msp/...                                  same, OU=peer

``.create_org(org) -> Path``            the org MSP folder; idempotent.
``.enroll(org, name, role, *, valid_from=None, valid_until=None) -> Path``
    Issues a new identity and returns its MSP folder. ``role`` is ``member``,
    ``auditor``, ``admin`` or ``peer`` (``orderer`` is accepted too). Creates the
    org on first use. Raises ``IdentityAlreadyEnrolled`` if the name exists.
``.revoke(org, name) -> Path``          revokes the name's certificate; returns the CRL path.
``.identity_dir(org, name) -> Path``    the MSP folder of an issued identity.
``.org_msp_dir(org) -> Path``, ``.msp_id(org) -> str`` (``<org>MSP``), ``.orgs() -> list[str]``.
``.trust_store() -> TrustStore``        every org MSP of this CA.

Org names are Fabric-style (``Org1``); the MSP id is ``<org>MSP``. A trailing
``MSP`` in ``org`` is accepted and stripped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.identity.certificates import (
    ATTRIBUTES_OID,
    ENROLLMENT_ID_ATTRIBUTE,
    ROLE_ATTRIBUTE,
    TrustStore,
)
from gateway.identity.errors import CaError, IdentityAlreadyEnrolled, IdentityNotFound

Role = Literal["member", "auditor", "admin", "peer", "orderer"]
ROLES: Final = ("member", "auditor", "admin", "peer", "orderer")
# NodeOU each role is classified as, as Fabric CA does from hf.Type.
_NODE_OU: Final[dict[str, str]] = {
    "member": "client",
    "auditor": "client",
    "admin": "admin",
    "peer": "peer",
    "orderer": "orderer",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_CA_CERT: Final = "ca-cert.pem"
_CA_KEY: Final = "ca-key.pem"
_REGISTRY: Final = "registry.json"
_CRL: Final = "crl.pem"
_CERT_LIFETIME: Final = dt.timedelta(days=365)
_CA_LIFETIME: Final = dt.timedelta(days=3650)
# CRLs are re-signed on every revocation; the long window keeps an idle CA's CRL valid.
_CRL_LIFETIME: Final = dt.timedelta(days=365)

_NODE_OUS_YAML: Final = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/{ca}
    OrganizationalUnitIdentifier: orderer
"""


def _san(host: str) -> x509.GeneralName:
    """An IP address SAN for an address (TLS clients match IPs only against those),
    a DNS name otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` so a reader sees the old or the new file, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Signing only; a CA's key also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class EmbeddedCA:
    """A file-backed CA per org; safe to use from several processes (file lock)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- names and paths ------------------------------------------------------------------

    @staticmethod
    def org_name(org: str) -> str:
        """``Org1`` for ``Org1`` or ``Org1MSP``."""
        name = org[:-3] if org.endswith("MSP") and len(org) > 3 else org
        if not _NAME_RE.match(name):
            raise CaError(f"org name {org!r} is not valid: use letters, digits, '.', '-', '_'")
        return name

    def msp_id(self, org: str) -> str:
        return f"{self.org_name(org)}MSP"

    def org_dir(self, org: str) -> Path:
        return self.root / self.org_name(org)

    def org_msp_dir(self, org: str) -> Path:
        """The org's MSP folder (CA certs, CRL, NodeOUs): what verifiers trust."""
        return self.org_dir(org) / "msp"

    def identity_dir(self, org: str, name: str) -> Path:
        """The MSP folder of an identity issued by :meth:`enroll`."""
        entry = self._registry(org).get(name)
        if entry is None:
            raise IdentityNotFound(f"no identity {name!r} was enrolled in {self.org_name(org)}")
        return self.org_dir(org) / str(entry["dir"])

    def orgs(self) -> list[str]:
        """Org names that have a CA, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "ca" / _CA_CERT).is_file())

    def trust_store(self) -> TrustStore:
        """A :class:`TrustStore` over every org MSP folder of this CA."""
        return TrustStore.from_msp_dirs({self.msp_id(o): self.org_msp_dir(o) for o in self.orgs()})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- org CA ---------------------------------------------------------------------------

    def create_org(self, org: str) -> Path:
        """Create the org's CA and MSP folder if missing; returns the MSP folder."""
        with self._locked():
            self._create_org_locked(org)
        return self.org_msp_dir(org)

    def _create_org_locked(self, org: str) -> None:
        name = self.org_name(org)
        ca_dir = self.org_dir(name) / "ca"
        if (ca_dir / _CA_CERT).is_file():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name.lower()),
                x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{name.lower()}"),
            ]
        )
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(
                _key_usage(signs_certificates=True),
                critical=True,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_atomic(ca_dir / _CA_KEY, _key_pem(key), 0o600)
        _write_atomic(ca_dir / _REGISTRY, b"{}")
        msp = self.org_msp_dir(name)
        self._write_msp_common(msp, cert)
        self._write_crl_locked(name, key, cert, {})
        # The certificate last: its presence is what marks the org as created.
        _write_atomic(ca_dir / _CA_CERT, _pem(cert))

    def _ca(self, org: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        ca_dir = self.org_dir(org) / "ca"
        try:
            cert = x509.load_pem_x509_certificate((ca_dir / _CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((ca_dir / _CA_KEY).read_bytes(), None)
        except FileNotFoundError:
            raise CaError(f"org {self.org_name(org)} has no CA under {self.root}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"the CA key of {self.org_name(org)} is not an EC key")
        return key, cert

    def _write_msp_common(self, msp: Path, ca_cert: x509.Certificate) -> None:
        ca_file = "ca-cert.pem"
        _write_atomic(msp / "cacerts" / ca_file, _pem(ca_cert))
        _write_atomic(msp / "tlscacerts" / ca_file, _pem(ca_cert))
        _write_atomic(msp / "config.yaml", _NODE_OUS_YAML.format(ca=ca_file).encode())

    def _registry(self, org: str) -> dict[str, dict[str, Any]]:
        path = self.org_dir(org) / "ca" / _REGISTRY
        try:
            data: dict[str, dict[str, Any]] = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        return data

    # -- identities -----------------------------------------------------------------------

    def enroll(
        self,
        org: str,
        name: str,
        role: str,
        *,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        hosts: tuple[str, ...] = (),
    ) -> Path:
        """Issue identity ``name`` with ``role`` in ``org``; returns its MSP folder."""
        if role not in ROLES:
            raise CaError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not _NAME_RE.match(name):
            raise CaError(
                f"identity name {name!r} is not valid: 1-64 letters, digits, '.', '-', '_', '@'"
            )
        with self._locked():
            self._create_org_locked(org)
            org_name = self.org_name(org)
            registry = self._registry(org_name)
            if name in registry:
                raise IdentityAlreadyEnrolled(
                    f"{name!r} is already enrolled in {org_name}; revoke it or choose another name"
                )
            ca_key, ca_cert = self._ca(org_name)
            node_ou = _NODE_OU[role]
            key = ec.generate_private_key(ec.SECP256R1())
            attrs: dict[str, str] = {
                "hf.Affiliation": "",
                ENROLLMENT_ID_ATTRIBUTE: name,
                "hf.Type": node_ou,
            }
            if role not in ("peer", "orderer"):
                attrs[ROLE_ATTRIBUTE] = role
            now = _now()
            not_before = valid_from or (now - dt.timedelta(minutes=5))
            not_after = valid_until or (now + _CERT_LIFETIME)
            sans: list[x509.GeneralName] = [_san(h) for h in (hosts or (name,))]
            if role in ("peer", "orderer"):
                sans += [x509.DNSName("localhost")]
            serial = x509.random_serial_number()
            cert = (
                x509.CertificateBuilder()
                .subject_name(
                    x509.Name(
                        [
                            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name.lower()),
                            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, node_ou),
                            x509.NameAttribute(NameOID.COMMON_NAME, name),
                        ]
                    )
                )
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(
                    _key_usage(signs_certificates=False),
                    critical=True,
                )
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(
                    x509.UnrecognizedExtension(
                        ATTRIBUTES_OID,
                        json.dumps(
                            {"attrs": attrs}, sort_keys=True, separators=(",", ":")
                        ).encode(),
                    ),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            folder = ("peers" if role in ("peer", "orderer") else "users") + f"/{name}"
            msp = self.org_dir(org_name) / folder / "msp"
            ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()
            self._write_msp_common(msp, ca_cert)
            _write_atomic(msp / "keystore" / f"{ski}_sk", _key_pem(key), 0o600)
            _write_atomic(msp / "signcerts" / "cert.pem", _pem(cert))
            registry[name] = {
                "dir": f"{folder}/msp",
                "role": role,
                "serial": format(serial, "x"),
                "revoked_at": None,
            }
            _write_atomic(
                self.org_dir(org_name) / "ca" / _REGISTRY,
                json.dumps(registry, indent=1, sort_keys=True).encode(),
            )
            return msp

    def revoke(self, org: str, name: str) -> Path:
        """Revoke ``name``'s certificate; returns the org MSP's CRL file (rewritten)."""
        with self._locked():
            org_name = self.org_name(org)
            registry = self._registry(org_name)
            entry = registry.get(name)
            if entry is None:
                raise IdentityNotFound(f"no identity {name!r} was enrolled in {org_name}")
            if entry["revoked_at"] is None:
                entry["revoked_at"] = _now().isoformat()
                _write_atomic(
                    self.org_dir(org_name) / "ca" / _REGISTRY,
                    json.dumps(registry, indent=1, sort_keys=True).encode(),
                )
            ca_key, ca_cert = self._ca(org_name)
            return self._write_crl_locked(org_name, ca_key, ca_cert, registry)

    def _write_crl_locked(
        self,
        org_name: str,
        ca_key: ec.EllipticCurvePrivateKey,
        ca_cert: x509.Certificate,
        registry: dict[str, dict[str, Any]],
    ) -> Path:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now)
            .next_update(now + _CRL_LIFETIME)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        for entry in registry.values():
            if entry.get("revoked_at"):
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(entry["serial"], 16))
                    .revocation_date(dt.datetime.fromisoformat(entry["revoked_at"]))
                    .build()
                )
        crl_pem = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        _write_atomic(self.org_dir(org_name) / "ca" / _CRL, crl_pem)
        target = self.org_msp_dir(org_name) / "crls" / _CRL
        _write_atomic(target, crl_pem)
        return target
