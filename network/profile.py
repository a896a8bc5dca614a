"""The network's connection profile, built from its layout and topology.

The model (:class:`NetworkProfile`, :class:`OrgProfile`, :class:`OrdererProfile`)
is :mod:`gateway.ledger.profile`: the ledger client reads it, the network
writes it, so the network depends on the client's model and not the reverse.
"""

from __future__ import annotations

from gateway.ledger.profile import PROFILE_VERSION, NetworkProfile, OrdererProfile, OrgProfile
from network.layout import Layout
from network.topology import HOST, Topology

__all__ = [
    "PROFILE_VERSION",
    "NetworkProfile",
    "OrdererProfile",
    "OrgProfile",
    "build_profile",
]


def build_profile(layout: Layout, topology: Topology) -> NetworkProfile:
    """The profile of the network laid out at ``layout`` with ``topology``."""
    orgs = []
    for spec in topology.peer_orgs:
        peer = topology.peer_of(spec.name)
        ca_cert = layout.ca_cert(spec.slug)
        orgs.append(
            OrgProfile(
                name=spec.name,
                msp_id=spec.msp_id,
                peer_address=peer.address,
                peer_tls_ca=ca_cert,
                # The TLS certificates carry the node name, localhost and 127.0.0.1.
                peer_host_override=peer.name,
                peer_ops_address=f"{HOST}:{peer.ops_port}",
                admin_msp_dir=layout.user_identity(spec.slug, "admin") / "msp",
                msp_ca_certs=(ca_cert,),
                crl_path=layout.crl_file(spec.slug),
                ca_url=spec.ca.url,
                peer_name=peer.name,
                msp_dir=layout.org_msp(spec.slug),
            )
        )
    orderer_ca = layout.ca_cert(topology.orderer_org.slug)
    orderers = tuple(
        OrdererProfile(
            name=o.name,
            address=o.address,
            tls_ca=orderer_ca,
            admin_address=f"{HOST}:{o.admin_port}",
            ops_address=f"{HOST}:{o.ops_port}",
        )
        for o in topology.orderers
    )
    return NetworkProfile(
        channel=topology.channel, orgs=tuple(orgs), orderers=orderers, network_dir=layout.root
    )
