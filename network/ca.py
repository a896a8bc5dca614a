"""Fabric CA: one server per org, and every identity of the network issued by it.

Each org's CA serves on 127.0.0.1 with TLS (its own certificate has SANs for
``localhost`` and ``127.0.0.1``) and its operations listener on loopback. The
same CA issues the org's enrolment certificates and, with the ``tls``
profile, its TLS certificates, so ``ca-cert.pem`` is the org's root of trust
for both.

Identities are written as standard MSP folders: ``signcerts/cert.pem``,
``keystore/key.pem``, ``cacerts/ca.pem``, ``tlscacerts/ca.pem`` and a
``config.yaml`` enabling NodeOUs. Every ecert issued here carries the
``anchorline.role`` attribute (``member``, ``auditor`` or ``admin``).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from network.ca_rest import CARest, Enrolment
from network.errors import CAError, IdentityExists, UnknownIdentity
from network.install import FabricInstall
from network.layout import Layout
from network.nodes import go_memory
from network.processes import ProcessSpec
from network.topology import HOST, CANode, OrgSpec

ROLES = ("member", "auditor", "admin")
ROLE_ATTRIBUTE = "anchorline.role"
REGISTRAR = "registrar"

NODE_OUS = """\
NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
"""

SAN_HOSTS = ("localhost", HOST)
CA_MEMORY_MIB = 24


def registrar_secret(layout: Layout, org: OrgSpec) -> str:
    """The CA's bootstrap registrar password, made once and kept in the CA home."""
    path = layout.ca_home(org.slug) / "registrar.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def server_spec(
    install: FabricInstall, layout: Layout, org: OrgSpec, env_path: str, *, create: bool = False
) -> ProcessSpec:
    """The fabric-ca-server process of ``org``, on loopback only (API and operations).

    With ``create`` the CA home and its registrar secret are made if missing;
    without, nothing is written (the spec is only inspected).
    """
    ca = org.ca
    home = layout.ca_home(org.slug)
    secret_file = home / "registrar.secret"
    secret = registrar_secret(layout, org) if create or secret_file.exists() else "unset"
    argv = (
        str(install.binary("fabric-ca-server")),
        "start",
        "--home",
        str(home),
        "--address",
        HOST,
        "--port",
        str(ca.port),
        "-b",
        f"{REGISTRAR}:{secret}",
        "--tls.enabled",
        "--csr.cn",
        ca.name,
        "--csr.hosts",
        ",".join(SAN_HOSTS),
        "--ca.name",
        ca.name,
    )
    env = {
        "PATH": env_path,
        **go_memory(CA_MEMORY_MIB, gogc=50),
        "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": f"{HOST}:{ca.ops_port}",
        "FABRIC_CA_SERVER_METRICS_PROVIDER": "disabled",
    }
    return ProcessSpec(ca.name, argv, env, layout.log_file(ca.name), layout.pid_file(ca.name))


class CAClient:
    """One org's CA, as its bootstrap registrar.

    Register and enroll go over the CA's REST API (network.ca_rest); revoke and
    the CRL through fabric-ca-client.
    """

    def __init__(self, install: FabricInstall, layout: Layout, org: OrgSpec) -> None:
        self.install = install
        self.layout = layout
        self.org = org
        self.ca: CANode = org.ca
        self.tls_ca = layout.ca_cert(org.slug)
        self.registrar_home = layout.ca_admin_home(org.slug)

    def _run(self, args: Sequence[str], home: Path) -> str:
        home.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.install.binary("fabric-ca-client")),
            *args,
            "--home",
            str(home),
            "--tls.certfiles",
            str(self.tls_ca),
            "--caname",
            self.ca.name,
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise CAError(f"{self.ca.name}: fabric-ca-client {args[0]} timed out") from None
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if "Error" in ln]
            detail = lines[-1].strip() if lines else done.stderr.strip()[-300:]
            reason = detail.split(" - ", 1)[-1]
            if "is already registered" in detail:
                raise IdentityExists(f"{self.org.name}: {reason}; choose another --name")
            if "does not exist" in detail or "Authentication failure" in detail:
                raise UnknownIdentity(f"{self.org.name}: {reason}")
            raise CAError(f"{self.ca.name}: fabric-ca-client {args[0]} failed: {detail}")
        return done.stdout + done.stderr

    @property
    def registrar_msp(self) -> Path:
        return self.registrar_home / "msp"

    def _rest(self) -> CARest:
        return CARest(HOST, self.ca.port, self.ca.name, self.tls_ca)

    def _registrar(self) -> Enrolment:
        cert = (self.registrar_msp / "signcerts" / "cert.pem").read_bytes()
        key_file = next((self.registrar_msp / "keystore").glob("*_sk"))
        return Enrolment(key_file.read_bytes(), cert, key_file.name[: -len("_sk")])

    def enroll_registrar(self) -> None:
        """Enrol the bootstrap registrar (once; later calls reuse its MSP)."""
        if (self.registrar_msp / "signcerts" / "cert.pem").exists():
            return
        secret = registrar_secret(self.layout, self.org)
        enrolment = self._rest().enroll(REGISTRAR, secret, SAN_HOSTS)
        # fabric-ca-client (revoke, gencrl) finds the key by its SKI-named file.
        _write_msp(enrolment, self.tls_ca, self.registrar_msp, key_name=f"{enrolment.ski}_sk")

    def register(self, name: str, id_type: str, role: str | None) -> str:
        """Register ``name``; return its one-time enrolment secret."""
        secret = secrets.token_hex(12)
        attrs = {ROLE_ATTRIBUTE: role} if role is not None else {}
        self._rest().register(self._registrar(), name, secret, id_type, attrs)
        return secret

    def enroll(self, name: str, secret: str, msp_dir: Path, tls_dir: Path | None = None) -> None:
        """Enrol into ``msp_dir`` as a NodeOUs MSP; with ``tls_dir`` also a TLS certificate.

        The TLS certificate is a re-enrolment signed with the new ecert's key (the CA
        checks a secret with bcrypt, a signature costs it far less).
        """
        rest = self._rest()
        hosts = (*SAN_HOSTS, name)
        enrolment = rest.enroll(name, secret, hosts)
        _write_msp(enrolment, self.tls_ca, msp_dir)
        if tls_dir is not None:
            _write_tls(rest.reenroll(enrolment, name, hosts, profile="tls"), self.tls_ca, tls_dir)

    def revoke(self, name: str) -> Path:
        """Revoke every certificate of ``name`` and publish the org's CRL; return its path."""
        self._run(
            [
                "revoke",
                "-u",
                f"https://{HOST}:{self.ca.port}",
                "-M",
                str(self.registrar_msp),
                "-e",
                name,
                "-r",
                "unspecified",
            ],
            self.registrar_home,
        )
        return self.publish_crl()

    def publish_crl(self) -> Path:
        """Write the CA's current CRL to ``Layout.crl_file`` (what the profile points at)."""
        self._run(
            ["gencrl", "-u", f"https://{HOST}:{self.ca.port}", "-M", str(self.registrar_msp)],
            self.registrar_home,
        )
        target = self.layout.crl_file(self.org.slug)
        shutil.copyfile(self.registrar_msp / "crls" / "crl.pem", target)
        # The org's MSP folder carries it too, as an MSP's crls/ does, so whoever trusts
        # the org through that folder (the gateway) sees the revocation.
        msp_crls = self.layout.org_msp(self.org.slug) / "crls"
        msp_crls.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, msp_crls / "crl.pem")
        return target


def _write_msp(
    enrolment: Enrolment, ca_cert: Path, msp_dir: Path, key_name: str = "key.pem"
) -> None:
    """A fixed-name MSP folder with NodeOUs for ``enrolment``."""
    shutil.rmtree(msp_dir, ignore_errors=True)
    for sub in ("signcerts", "keystore", "cacerts", "tlscacerts"):
        (msp_dir / sub).mkdir(parents=True, exist_ok=True)
    (msp_dir / "signcerts" / "cert.pem").write_bytes(enrolment.cert_pem)
    if enrolment.key_pem:
        key = msp_dir / "keystore" / key_name
        key.write_bytes(enrolment.key_pem)
        key.chmod(0o600)
    else:
        # The key lives elsewhere (a PKCS#11 token): the folder holds no keystore.
        (msp_dir / "keystore").rmdir()
    shutil.copyfile(ca_cert, msp_dir / "cacerts" / "ca.pem")
    shutil.copyfile(ca_cert, msp_dir / "tlscacerts" / "ca.pem")
    (msp_dir / "config.yaml").write_text(NODE_OUS)


def write_org_msp(layout: Layout, org: OrgSpec) -> Path:
    """The org's channel MSP (CA certs + NodeOUs), as configtxgen reads it."""
    msp = layout.org_msp(org.slug)
    for sub in ("cacerts", "tlscacerts"):
        (msp / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layout.ca_cert(org.slug), msp / sub / "ca.pem")
    (msp / "config.yaml").write_text(NODE_OUS)
    return msp


def _write_tls(enrolment: Enrolment, ca_cert: Path, target: Path) -> None:
    """A TLS pair laid out as ``server.crt``, ``server.key`` and ``ca.crt``."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "server.crt").write_bytes(enrolment.cert_pem)
    (target / "server.key").write_bytes(enrolment.key_pem)
    (target / "server.key").chmod(0o600)
    shutil.copyfile(ca_cert, target / "ca.crt")


def issue_node(client: CAClient, node: str, id_type: str) -> Path:
    """Register and enrol a node (peer or orderer): ``msp/`` and ``tls/`` under its folder."""
    folder = client.layout.node_identity(client.org.slug, node)
    secret = client.register(node, id_type, None)
    client.enroll(node, secret, folder / "msp", folder / "tls")
    return folder


def issue_user_for_request(client: CAClient, name: str, role: str, request: bytes) -> Path:
    """Register ``name`` and enrol it for the key of ``request`` (a PEM PKCS#10 request
    signed elsewhere, e.g. by a PKCS#11 token); the MSP folder gets no keystore."""
    if role not in ROLES:
        raise CAError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    folder = client.layout.user_identity(client.org.slug, name)
    secret = client.register(name, "admin" if role == "admin" else "client", role)
    cert = client._rest().enroll_request(name, secret, request)
    _write_msp(Enrolment(b"", cert, ""), client.tls_ca, folder / "msp")
    return folder / "msp"


def issue_user(client: CAClient, name: str, role: str, *, with_tls: bool = False) -> Path:
    """Register and enrol a user with ``role``; return its MSP folder.

    Admins are registered with type ``admin`` (the NodeOU admin role); members and
    auditors as ``client``.
    """
    if role not in ROLES:
        raise CAError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    folder = client.layout.user_identity(client.org.slug, name)
    id_type = "admin" if role == "admin" else "client"
    secret = client.register(name, id_type, role)
    client.enroll(name, secret, folder / "msp", folder / "tls" if with_tls else None)
    return folder / "msp"
