"""Fabric CA's REST API for register and enroll, from Python.

``network up`` registers and enrols some twenty identities; doing it in-process
instead of one ``fabric-ca-client`` process per call takes the identity step
from about 2 s to a few hundred milliseconds. What is sent is what
fabric-ca-client sends: a PKCS#10 request with the enrolment id as CN and the
SANs asked for (``POST /api/v1/enroll``, HTTP basic auth with the one-time
secret), and registrations signed with the registrar's key in Fabric CA's
token format (``POST /api/v1/register``, ``Authorization: <b64 cert>.<b64 sig>``
over ``method.b64(uri).b64(body).b64(cert)``, low-S ECDSA). Revocation and CRLs
stay with fabric-ca-client (network.ca).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.identity.signing import EcdsaSigner, sign_message
from network.errors import CAError, IdentityExists, UnknownIdentity

# Fabric CA's error codes for "already registered" and "no such identity".
_ALREADY_REGISTERED = 74
_UNKNOWN_IDENTITY = 63


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclasses.dataclass(frozen=True)
class Enrolment:
    key_pem: bytes
    cert_pem: bytes
    # Fabric's subject key identifier: SHA-256 of the uncompressed public point.
    ski: str


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ski(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return hashlib.sha256(point).hexdigest()


def _csr(key: ec.EllipticCurvePrivateKey, name: str, hosts: Sequence[str]) -> bytes:
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class CARest:
    """One Fabric CA server, over HTTPS on loopback."""

    def __init__(self, host: str, port: int, ca_name: str, tls_ca: Path) -> None:
        self.base = f"https://{host}:{port}"
        self.ca_name = ca_name
        self._tls = ssl.create_default_context(cafile=str(tls_ca))

    def _post(
        self, path: str, body: dict[str, Any], authorization: str, data: bytes | None = None
    ) -> dict[str, Any]:
        """POST ``data`` (default: ``body`` as JSON): a signed request sends the bytes it signed."""
        data = json.dumps(body).encode() if data is None else data
        request = urllib.request.Request(  # noqa: S310 - https to our own CA
            self.base + path,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": authorization},
        )
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=30) as resp:  # noqa: S310
                answer: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                raise CAError(f"{self.ca_name}: {path} answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise CAError(f"{self.ca_name}: {path} failed: {exc}") from None
        if not answer.get("success"):
            errors = answer.get("errors") or [{"code": 0, "message": "no detail"}]
            code, message = errors[0].get("code"), errors[0].get("message", "")
            if code == _ALREADY_REGISTERED:
                raise IdentityExists(f"{self.ca_name}: {message}; choose another --name")
            if code == _UNKNOWN_IDENTITY:
                raise UnknownIdentity(f"{self.ca_name}: {message}")
            raise CAError(f"{self.ca_name}: {path} refused (code {code}): {message}")
        return answer

    def _request_body(self, csr_pem: bytes, hosts: Sequence[str], profile: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "certificate_request": csr_pem.decode(),
            "hosts": list(hosts),
            "caname": self.ca_name,
        }
        if profile:
            body["profile"] = profile
        return body

    def _certificate_request(
        self, name: str, hosts: Sequence[str], profile: str
    ) -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
        """A fresh key and the enroll/reenroll body asking a certificate for it."""
        key = ec.generate_private_key(ec.SECP256R1())
        return key, self._request_body(_csr(key, name, hosts), hosts, profile)

    def enroll_request(
        self, name: str, secret: str, csr_pem: bytes, hosts: Sequence[str] = ()
    ) -> bytes:
        """The certificate for a request made elsewhere (a key in a PKCS#11 token signed
        it, see gateway.identity.csr): the key never passes through here."""
        basic = _b64(f"{name}:{secret}".encode())
        body = self._request_body(csr_pem, hosts, "")
        answer = self._post("/api/v1/enroll", body, f"Basic {basic}")
        return base64.b64decode(answer["result"]["Cert"])

    def enroll(self, name: str, secret: str, hosts: Sequence[str], profile: str = "") -> Enrolment:
        """A new key pair and certificate for ``name`` (``profile="tls"`` for TLS)."""
        key, body = self._certificate_request(name, hosts, profile)
        basic = _b64(f"{name}:{secret}".encode())
        answer = self._post("/api/v1/enroll", body, f"Basic {basic}")
        cert = base64.b64decode(answer["result"]["Cert"])
        return Enrolment(_key_pem(key), cert, _ski(key))

    def reenroll(
        self, current: Enrolment, name: str, hosts: Sequence[str], profile: str = ""
    ) -> Enrolment:
        """A further certificate for an enrolled identity, authenticated by its ``current`` one.

        Used for TLS certificates: it signs with the identity's key instead of
        presenting the secret again, which the CA would check with bcrypt.
        """
        key, body = self._certificate_request(name, hosts, profile)
        data = json.dumps(body).encode()
        token = self.token(current, "POST", "/api/v1/reenroll", data)
        answer = self._post("/api/v1/reenroll", body, token, data)
        cert = base64.b64decode(answer["result"]["Cert"])
        return Enrolment(_key_pem(key), cert, _ski(key))

    def register(
        self,
        registrar: Enrolment,
        name: str,
        secret: str,
        id_type: str,
        attrs: dict[str, str],
    ) -> None:
        """Register ``name`` (attributes go into its ecerts)."""
        body = {
            "id": name,
            "type": id_type,
            "secret": secret,
            "affiliation": "",
            "max_enrollments": -1,
            "attrs": [{"name": k, "value": v, "ecert": True} for k, v in attrs.items()],
            "caname": self.ca_name,
        }
        data = json.dumps(body).encode()
        self._post(
            "/api/v1/register", body, self.token(registrar, "POST", "/api/v1/register", data)
        )

    @staticmethod
    def token(registrar: Enrolment, method: str, uri: str, body: bytes) -> str:
        """Fabric CA's request token: ``<b64 cert>.<b64 low-S ECDSA signature>``."""
        key = serialization.load_pem_private_key(registrar.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CAError("the registrar's key is not an EC key")
        b64cert = _b64(registrar.cert_pem)
        payload = f"{method}.{_b64(uri.encode())}.{_b64(body)}.{b64cert}".encode()
        return f"{b64cert}.{_b64(sign_message(EcdsaSigner(key), payload))}"
