"""A standard Fabric connection profile, read as a :class:`~gateway.ledger.profile.NetworkProfile`.

The common format of Fabric's SDKs (``connection-org1.yaml`` / ``.json`` of
fabric-samples, what a consortium hands a new member), YAML or JSON::

    name: a-consortium
    version: 1.0.0
    channels:
      mychannel:
        orderers: [orderer.example.com]
        peers: {peer0.org1.example.com: {}}
    organizations:
      Org1:
        mspid: Org1MSP
        peers: [peer0.org1.example.com]
        certificateAuthorities: [ca.org1.example.com]
        # optional, not in every profile: the org's MSP folder (cacerts/, crls/)
        mspDir: /etc/consortium/org1/msp
    peers:
      peer0.org1.example.com:
        url: grpcs://peer0.org1.example.com:7051
        tlsCACerts: {path: /etc/consortium/org1/tlsca.pem}     # or {pem: "-----BEGIN..."}
        grpcOptions: {ssl-target-name-override: peer0.org1.example.com}
    orderers:
      orderer.example.com:
        url: grpcs://orderer.example.com:7050
        tlsCACerts: {pem: "..."}
    certificateAuthorities:
      ca.org1.example.com:
        url: https://ca.org1.example.com:7054
        tlsCACerts: {pem: ["..."]}

What is read: the first channel (or the one named), each organization's
MSP id, its first peer (``url`` host and port, ``tlsCACerts`` as ``path``
or inline ``pem`` — a string or a list — and the TLS server name from
``grpcOptions.ssl-target-name-override`` or ``hostnameOverride``), its first
CA's ``url``, and the orderers of the channel. MSP folders, which the
format does not carry, come from the org's ``mspDir`` (relative paths are
relative to the profile) or from ``msp_dirs`` (MSP id → folder, the
gateway's ``trust_msp_dirs``). Inline PEM is written once to a
content-addressed file under ``pem_dir``, since the client reads TLS roots
from files. Paths that are relative are taken relative to the profile file.
Unknown keys are ignored, as the SDKs do. :func:`load_profile` reads
either format; :func:`to_connection_profile` writes ours in the SDKs' one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.errors import ConfigError
from gateway.ledger.profile import NetworkProfile, OrdererProfile, OrgProfile


def looks_like_connection_profile(doc: object) -> bool:
    """Whether ``doc`` is in the SDKs' format (rather than ``network up``'s profile.json)."""
    return isinstance(doc, dict) and "organizations" in doc and "peers" in doc


def read_document(path: Path) -> Any:
    """The parsed JSON or YAML of ``path`` (JSON is YAML, but its parser is stricter)."""
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: neither JSON nor YAML ({exc})") from None


def _default_pem_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"anchorline-pem-{os.getuid()}"


def _section(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key!r} must be a mapping")
    return value


class _Reader:
    def __init__(self, path: Path, doc: Mapping[str, Any], pem_dir: Path) -> None:
        self.path = path
        self.base = path.parent
        self.doc = doc
        self.pem_dir = pem_dir

    def file(self, value: str) -> Path:
        p = Path(os.path.expandvars(value)).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def tls_roots(self, entry: Mapping[str, Any], where: str) -> Path:
        certs = entry.get("tlsCACerts")
        if not isinstance(certs, dict):
            raise ConfigError(f"{self.path}: {where} has no tlsCACerts ({{path}} or {{pem}})")
        if certs.get("path"):
            found = self.file(str(certs["path"]))
            if not found.is_file():
                raise ConfigError(f"{self.path}: {where} tlsCACerts.path {found} is not a file")
            return found
        pem = certs.get("pem")
        if isinstance(pem, list):
            pem = "\n".join(str(p).strip() for p in pem)
        if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
            raise ConfigError(f"{self.path}: {where} tlsCACerts holds neither path nor pem")
        data = pem.strip().encode() + b"\n"
        target = self.pem_dir / f"{hashlib.sha256(data).hexdigest()[:32]}.pem"
        if not target.is_file():
            self.pem_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        return target

    @staticmethod
    def address(url: object, where: str) -> tuple[str, str]:
        """``(host:port, host)`` of a ``grpcs://host:port`` URL (or a bare ``host:port``)."""
        if not isinstance(url, str) or not url:
            raise ConfigError(f"{where} has no url")
        parts = urlsplit(url if "://" in url else f"grpcs://{url}")
        if parts.scheme not in ("grpcs", "grpc", "https", "http") or not parts.hostname:
            raise ConfigError(f"{where}: url {url!r} is not grpcs://host:port")
        if parts.port is None:
            raise ConfigError(f"{where}: url {url!r} has no port")
        if parts.scheme in ("grpc", "http"):
            raise ConfigError(f"{where}: url {url!r} is plain text; the gateway needs TLS")
        return f"{parts.hostname}:{parts.port}", parts.hostname


def from_connection_profile(
    path: Path,
    doc: Mapping[str, Any] | None = None,
    *,
    channel: str | None = None,
    msp_dirs: Mapping[str, Path] | None = None,
    pem_dir: Path | None = None,
) -> NetworkProfile:
    """The :class:`NetworkProfile` a connection profile describes (see the module
    docstring). Raises :class:`~gateway.errors.ConfigError` (AL1001) naming what is
    missing or wrong."""
    path = Path(path)
    if doc is None:
        doc = read_document(path)
    if not looks_like_connection_profile(doc):
        raise ConfigError(f"{path}: not a Fabric connection profile (organizations, peers)")
    assert isinstance(doc, Mapping)
    reader = _Reader(path, doc, pem_dir or _default_pem_dir())
    where = str(path)
    channels = _section(doc, "channels", where)
    if channel is None:
        if not channels:
            raise ConfigError(f"{path}: no channels: name the channel in the profile")
        channel = str(next(iter(channels)))
    elif channels and channel not in channels:
        raise ConfigError(f"{path}: channel {channel!r} is not one of {', '.join(channels)}")
    peers = _section(doc, "peers", where)
    cas = _section(doc, "certificateAuthorities", where)
    orgs: list[OrgProfile] = []
    for name, org in _section(doc, "organizations", where).items():
        if not isinstance(org, dict) or not org.get("mspid"):
            raise ConfigError(f"{path}: organization {name} has no mspid")
        msp_id = str(org["mspid"])
        peer_names = [str(p) for p in org.get("peers") or []]
        if not peer_names:
            continue  # an orderer org, or one with no peer for us: nothing to dial
        peer_name = peer_names[0]
        peer = peers.get(peer_name)
        if not isinstance(peer, dict):
            raise ConfigError(f"{path}: organization {name} names peer {peer_name}, not listed")
        address, host = reader.address(peer.get("url"), f"{path}: peer {peer_name}")
        options = peer.get("grpcOptions") or {}
        override = (
            options.get("ssl-target-name-override")
            or options.get("hostnameOverride")
            or peer.get("hostnameOverride")
            or host
        )
        ca_names = [str(c) for c in org.get("certificateAuthorities") or []]
        ca_entry = cas.get(ca_names[0]) if ca_names else None
        ca_url = str(ca_entry.get("url", "")) if isinstance(ca_entry, dict) else ""
        msp_dir: Path | None = None
        if org.get("mspDir"):
            msp_dir = reader.file(str(org["mspDir"]))
        elif msp_dirs and msp_id in msp_dirs:
            msp_dir = Path(msp_dirs[msp_id])
        ca_certs: tuple[Path, ...] = ()
        if msp_dir is not None and (msp_dir / "cacerts").is_dir():
            ca_certs = tuple(sorted(p for p in (msp_dir / "cacerts").iterdir() if p.is_file()))
        admin = org.get("adminMspDir")
        orgs.append(
            OrgProfile(
                name=str(name),
                msp_id=msp_id,
                peer_address=address,
                peer_tls_ca=reader.tls_roots(peer, f"peer {peer_name}"),
                peer_host_override=str(override),
                peer_ops_address="",
                admin_msp_dir=reader.file(str(admin)) if admin else Path(),
                msp_ca_certs=ca_certs,
                crl_path=(msp_dir / "crls" / "crl.pem") if msp_dir is not None else None,
                ca_url=ca_url,
                peer_name=peer_name,
                msp_dir=msp_dir,
            )
        )
    if not orgs:
        raise ConfigError(f"{path}: no organization has a peer")
    orderer_entries = _section(doc, "orderers", where)
    chosen = channels.get(channel) if isinstance(channels.get(channel), dict) else {}
    names = [str(o) for o in (chosen or {}).get("orderers") or orderer_entries]
    orderers = []
    for oname in names:
        entry = orderer_entries.get(oname)
        if not isinstance(entry, dict):
            continue
        address, _host = reader.address(entry.get("url"), f"{path}: orderer {oname}")
        orderers.append(
            OrdererProfile(
                name=oname,
                address=address,
                tls_ca=reader.tls_roots(entry, f"orderer {oname}"),
                admin_address="",
            )
        )
    return NetworkProfile(channel=channel, orgs=tuple(orgs), orderers=tuple(orderers))


def load_profile(path: Path) -> NetworkProfile:
    """The profile in ``path``: ``network up``'s ``profile.json`` or a standard Fabric
    connection profile (YAML or JSON). What the gateway and the CLI read a network by."""
    doc = read_document(Path(path))
    if looks_like_connection_profile(doc):
        return from_connection_profile(Path(path), doc)
    if not isinstance(doc, dict) or "orgs" not in doc:
        raise ConfigError(
            f"{path}: neither a network profile (profile.json) nor a Fabric connection profile"
        )
    return NetworkProfile.from_json(doc)


def to_connection_profile(profile: NetworkProfile, name: str = "anchorline") -> dict[str, Any]:
    """``profile`` in the SDKs' format (TLS roots inline), e.g. to hand a network to a
    member who did not start it; :func:`from_connection_profile` reads it back."""

    def pem(path: Path) -> dict[str, str]:
        return {"pem": Path(path).read_text()}

    peers: dict[str, Any] = {}
    orgs: dict[str, Any] = {}
    cas: dict[str, Any] = {}
    for org in profile.orgs:
        peer_name = org.peer_name or f"peer0.{org.name.lower()}"
        peers[peer_name] = {
            "url": f"grpcs://{org.peer_address}",
            "tlsCACerts": pem(org.peer_tls_ca),
            "grpcOptions": {"ssl-target-name-override": org.peer_host_override},
        }
        entry: dict[str, Any] = {"mspid": org.msp_id, "peers": [peer_name]}
        if org.ca_url:
            ca_name = f"ca.{org.name.lower()}"
            cas[ca_name] = {"url": org.ca_url, "tlsCACerts": pem(org.peer_tls_ca)}
            entry["certificateAuthorities"] = [ca_name]
        if org.msp_dir is not None:
            entry["mspDir"] = str(org.msp_dir)
        orgs[org.name] = entry
    orderers = {
        o.name: {
            "url": f"grpcs://{o.address}",
            "tlsCACerts": pem(o.tls_ca),
            "grpcOptions": {"ssl-target-name-override": o.name},
        }
        for o in profile.orderers
    }
    return {
        "name": name,
        "version": "1.0.0",
        "client": {"organization": profile.orgs[0].name if profile.orgs else ""},
        "channels": {
            profile.channel: {
                "orderers": list(orderers),
                "peers": {p: {} for p in peers},
            }
        },
        "organizations": orgs,
        "peers": peers,
        "orderers": orderers,
        "certificateAuthorities": cas,
    }


__all__ = [
    "from_connection_profile",
    "load_profile",
    "looks_like_connection_profile",
    "read_document",
    "to_connection_profile",
]
