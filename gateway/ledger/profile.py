"""The network profile: what a client needs to reach a running Fabric network.

``anchorline network up`` writes it as ``<network_dir>/profile.json`` (built by
:func:`network.profile.build_profile`); load it with :meth:`NetworkProfile.load`.
It lives with the ledger client because the client reads it; ``network/``
writes it. Every field is plain JSON (paths as strings on
disk, :class:`~pathlib.Path` in memory). Contract relied on by the gateway and
the tests:

- ``NetworkProfile.channel``; ``orgs`` (Org1, Org2, Org3 in that order) and
  ``orderers`` (orderer1..3).
- ``OrgProfile``: ``name`` ("Org1"), ``msp_id`` ("Org1MSP"), ``peer_address``
  ("127.0.0.1:PORT"), ``peer_tls_ca`` (PEM file that signs the peer's TLS
  certificate), ``peer_host_override`` (the TLS server name to verify; the
  certificates also carry 127.0.0.1), ``peer_ops_address`` (operations
  HTTP), ``admin_msp_dir`` (MSP folder of the org's admin), ``msp_ca_certs``
  (the org's CA certificates, to trust its members), ``crl_path`` (where the
  org's CRL is published; None before the first revocation), ``ca_url``,
  ``msp_dir`` (the org's MSP folder with ``cacerts/`` and, once a member was
  revoked, ``crls/``; None in profiles written before it existed).
- ``OrdererProfile``: ``name``, ``address``, ``tls_ca``, ``admin_address``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

PROFILE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class OrgProfile:
    name: str
    msp_id: str
    peer_address: str
    peer_tls_ca: Path
    peer_host_override: str
    peer_ops_address: str
    admin_msp_dir: Path
    msp_ca_certs: tuple[Path, ...]
    crl_path: Path | None
    ca_url: str
    peer_name: str = ""
    # The org's MSP folder (cacerts/, crls/): what a verifier trusts the org's members by.
    msp_dir: Path | None = None


@dataclasses.dataclass(frozen=True)
class OrdererProfile:
    name: str
    address: str
    tls_ca: Path
    admin_address: str
    ops_address: str = ""


@dataclasses.dataclass(frozen=True)
class NetworkProfile:
    channel: str
    orgs: tuple[OrgProfile, ...]
    orderers: tuple[OrdererProfile, ...]
    network_dir: Path | None = None

    def org(self, name: str) -> OrgProfile:
        """The org called ``name`` or with that MSP id (case-insensitive)."""
        for org in self.orgs:
            if name.lower() in (org.name.lower(), org.msp_id.lower()):
                return org
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        def conv(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple | list):
                return [conv(v) for v in value]
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {f.name: conv(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return value

        body = conv(self)
        assert isinstance(body, dict)
        body["version"] = PROFILE_VERSION
        return body

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NetworkProfile:
        orgs = tuple(
            OrgProfile(
                name=o["name"],
                msp_id=o["msp_id"],
                peer_address=o["peer_address"],
                peer_tls_ca=Path(o["peer_tls_ca"]),
                peer_host_override=o["peer_host_override"],
                peer_ops_address=o["peer_ops_address"],
                admin_msp_dir=Path(o["admin_msp_dir"]),
                msp_ca_certs=tuple(Path(p) for p in o["msp_ca_certs"]),
                crl_path=Path(o["crl_path"]) if o.get("crl_path") else None,
                ca_url=o["ca_url"],
                peer_name=o.get("peer_name", ""),
                msp_dir=Path(o["msp_dir"]) if o.get("msp_dir") else None,
            )
            for o in body["orgs"]
        )
        orderers = tuple(
            OrdererProfile(
                name=o["name"],
                address=o["address"],
                tls_ca=Path(o["tls_ca"]),
                admin_address=o["admin_address"],
                ops_address=o.get("ops_address", ""),
            )
            for o in body["orderers"]
        )
        network_dir = body.get("network_dir")
        return cls(
            channel=body["channel"],
            orgs=orgs,
            orderers=orderers,
            network_dir=Path(network_dir) if network_dir else None,
        )

    @classmethod
    def load(cls, path: Path) -> NetworkProfile:
        return cls.from_json(json.loads(Path(path).read_text()))
