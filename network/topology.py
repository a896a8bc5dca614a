"""The topology and every port it uses, derived from one base port.

3 Raft orderers in OrdererOrg, Org1/Org2/Org3 with one peer each, one Fabric
CA per org, plus any org added later with ``network add-org`` (one CA, one
peer). Everything listens on 127.0.0.1. Ports are handed out in a fixed
order from ``base_port`` upwards, skipping :data:`RESERVED_PORTS`, so the same
settings always give the same ports (the Compose file and the tests rely on
that). Chaincode servers take ports from a block after the nodes' ports. An
added org's CA, peer and chaincode ports come after all of those, in the order
the orgs were added, so adding an org never moves a port already in use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from gateway.errors import ConfigError

HOST = "127.0.0.1"

# Taken by another service on the development machines.
RESERVED_PORTS = frozenset({2024})

PEER_ORGS = ("Org1", "Org2", "Org3")
ORDERER_ORG = "OrdererOrg"
ORDERER_COUNT = 3

# Ports reserved for chaincode servers: MAX_CHAINCODES chaincodes x one per peer.
MAX_CHAINCODES = 16
# An added org's name: it becomes the MSP id (<name>MSP), folder and process names.
ORG_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,31}$")


@dataclasses.dataclass(frozen=True)
class CANode:
    org: str
    name: str  # process name, e.g. "ca.org1"
    port: int
    ops_port: int

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"


@dataclasses.dataclass(frozen=True)
class OrdererNode:
    org: str
    name: str  # e.g. "orderer1"
    port: int
    admin_port: int
    ops_port: int

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@dataclasses.dataclass(frozen=True)
class PeerNode:
    org: str
    name: str  # e.g. "peer0.org1"
    port: int
    chaincode_port: int
    ops_port: int

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@dataclasses.dataclass(frozen=True)
class OrgSpec:
    name: str  # "Org1"
    msp_id: str  # "Org1MSP"
    ca: CANode

    @property
    def slug(self) -> str:
        """Lower-case folder name: "org1", "ordererorg"."""
        return self.name.lower()


@dataclasses.dataclass(frozen=True)
class Topology:
    base_port: int
    channel: str
    orderer_org: OrgSpec
    peer_orgs: tuple[OrgSpec, ...]
    orderers: tuple[OrdererNode, ...]
    peers: tuple[PeerNode, ...]
    # First port of the chaincode server block; see chaincode_port().
    chaincode_base: int
    chaincode_ports: tuple[int, ...]

    @property
    def orgs(self) -> tuple[OrgSpec, ...]:
        return (self.orderer_org, *self.peer_orgs)

    @property
    def cas(self) -> tuple[CANode, ...]:
        return tuple(org.ca for org in self.orgs)

    def org(self, name: str) -> OrgSpec:
        """The org called ``name`` (case-insensitive); KeyError if none."""
        for org in self.orgs:
            if org.name.lower() == name.lower():
                return org
        raise KeyError(name)

    def peer_of(self, org: str) -> PeerNode:
        return next(p for p in self.peers if p.org == org)

    @property
    def added_orgs(self) -> tuple[OrgSpec, ...]:
        """The peer orgs added after the first ``up``, in the order they were added."""
        return self.peer_orgs[len(PEER_ORGS) :]

    def chaincode_port(self, chaincode_index: int, peer_index: int) -> int:
        """Port of the chaincode server for the n-th deployed chaincode on the n-th peer.

        The first peers' ports interleave (chaincode by chaincode, as since the first
        network); an added org's peer has a block of its own after them.
        """
        if not 0 <= chaincode_index < MAX_CHAINCODES:
            raise ConfigError(f"at most {MAX_CHAINCODES} chaincodes can be deployed")
        first = len(PEER_ORGS)
        if peer_index < first:
            return self.chaincode_ports[chaincode_index * first + peer_index]
        block = MAX_CHAINCODES * first + (peer_index - first) * MAX_CHAINCODES
        return self.chaincode_ports[block + chaincode_index]

    def all_ports(self) -> Iterator[tuple[str, int]]:
        """Every (owner, port) the nodes listen on (chaincode servers excluded)."""
        for ca in self.cas:
            yield ca.name, ca.port
            yield f"{ca.name} operations", ca.ops_port
        for o in self.orderers:
            yield o.name, o.port
            yield f"{o.name} admin", o.admin_port
            yield f"{o.name} operations", o.ops_port
        for p in self.peers:
            yield p.name, p.port
            yield f"{p.name} chaincode", p.chaincode_port
            yield f"{p.name} operations", p.ops_port


class _Ports:
    def __init__(self, base: int) -> None:
        self._next = base

    def take(self) -> int:
        while self._next in RESERVED_PORTS:
            self._next += 1
        port = self._next
        if port > 65535:
            raise ConfigError("network.base_port is too high: the ports would pass 65535")
        self._next += 1
        return port


def check_org_name(name: str) -> str:
    """``name`` if it can name an added org (``Org4``, ``Acme``); else ConfigError."""
    if not ORG_NAME.match(name):
        raise ConfigError(
            f"org name {name!r}: use a capital letter then letters or digits (at most 32), "
            "e.g. Org4"
        )
    return name


def build_topology(
    base_port: int = 7100, channel: str = "anchorline", added_orgs: Sequence[str] = ()
) -> Topology:
    """The default topology with ports from ``base_port`` upwards, plus ``added_orgs``."""
    if not 1024 <= base_port <= 65535:
        raise ConfigError(f"network.base_port={base_port} must be between 1024 and 65535")
    if not channel or not channel.islower() or not channel.replace("-", "").isalnum():
        raise ConfigError(f"network.channel={channel!r}: use lower-case letters, digits and '-'")
    ports = _Ports(base_port)

    def org(name: str) -> OrgSpec:
        slug = name.lower()
        ca = CANode(org=name, name=f"ca.{slug}", port=ports.take(), ops_port=ports.take())
        return OrgSpec(name=name, msp_id=f"{name}MSP", ca=ca)

    orderer_org = org(ORDERER_ORG)
    peer_orgs = tuple(org(n) for n in PEER_ORGS)
    orderers = tuple(
        OrdererNode(
            org=ORDERER_ORG,
            name=f"orderer{i}",
            port=ports.take(),
            admin_port=ports.take(),
            ops_port=ports.take(),
        )
        for i in range(1, ORDERER_COUNT + 1)
    )
    peers = tuple(
        PeerNode(
            org=o.name,
            name=f"peer0.{o.slug}",
            port=ports.take(),
            chaincode_port=ports.take(),
            ops_port=ports.take(),
        )
        for o in peer_orgs
    )
    chaincode_ports = tuple(ports.take() for _ in range(MAX_CHAINCODES * len(peers)))
    seen = {o.name.lower() for o in (orderer_org, *peer_orgs)}
    for name in added_orgs:
        if check_org_name(name).lower() in seen:
            raise ConfigError(f"org {name!r} is already part of the topology")
        seen.add(name.lower())
        added = org(name)
        peer = PeerNode(
            org=name,
            name=f"peer0.{added.slug}",
            port=ports.take(),
            chaincode_port=ports.take(),
            ops_port=ports.take(),
        )
        peer_orgs += (added,)
        peers += (peer,)
        chaincode_ports += tuple(ports.take() for _ in range(MAX_CHAINCODES))
    return Topology(
        base_port=base_port,
        channel=channel,
        orderer_org=orderer_org,
        peer_orgs=peer_orgs,
        orderers=orderers,
        peers=peers,
        chaincode_base=chaincode_ports[0],
        chaincode_ports=chaincode_ports,
    )
