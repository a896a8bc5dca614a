"""The channel's configtx.yaml and genesis block (no system channel).

One application channel profile: etcdraft ordering with the three orderers as
consenters, Org1-3 as application orgs. Each org definition carries its own
``OrdererEndpoints`` / ``AnchorPeers``, so the genesis block already tells the
peers where the orderers and the other orgs' peers are: no anchor-peer update
transaction is needed. Both the lifecycle and the default endorsement policy
are a majority of the orgs' peers, so no single org can write alone.

The application group's Readers, Writers and Endorsement policies are written
out as signature policies over the orgs' principals rather than as Fabric's
usual ImplicitMeta rules ("ANY Readers", "MAJORITY Endorsement"). They admit
exactly the same identities, but an ImplicitMeta rule evaluates each org's
sub-policy in turn and each sub-policy verifies every signature again: a
MAJORITY check of two endorsements cost 4-6 ECDSA verifications per peer per
transaction, and an ANY check of a proposal 1-3, where a signature policy
verifies each signature once. ECDSA verification was a third of the peers' CPU
under load; the change took committed submits/s from 217 to 252 (BatchTimeout
200 ms, 128 concurrent, this 2-core machine). The price: adding an org to the
channel means rewriting these policies too, not only adding its group:
``network add-org`` has :func:`configuration_for` make the whole configuration
for the grown topology and takes the new org's group and these policies from it
(:func:`network.channel.with_added_org`), so this module stays the one place
that says what the policies are.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from fabric_protos.common import configtx_pb2

from network.channel import config_from_block
from network.errors import ChannelError
from network.install import FabricInstall
from network.layout import Layout
from network.topology import HOST, OrgSpec, Topology

PROFILE = "AnchorlineChannel"

# Heartbeat every tick; a follower that misses 6 (0.6-1.2 s with the random
# spread, at the default 100 ms tick) starts an election, so a new leader is in
# place about 1 s after the old one dies. 10 ticks measured 1.3-3.8 s to the
# next commit here, 6 ticks 1.2-1.3 s.
ELECTION_TICK = 6
HEARTBEAT_TICK = 1
# An orderer keeps the Raft entries since its last snapshot in memory: snapshot
# every 4 MB rather than Fabric's 16 MB.
SNAPSHOT_INTERVAL = "4 MB"


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org(layout: Layout, org: OrgSpec, topology: Topology) -> dict[str, Any]:
    msp = org.msp_id
    definition: dict[str, Any] = {
        "Name": msp,
        "ID": msp,
        "MSPDir": str(layout.org_msp(org.slug)),
    }
    if org.name == topology.orderer_org.name:
        definition["Policies"] = {
            "Readers": _sig(f"OR('{msp}.member')"),
            "Writers": _sig(f"OR('{msp}.member')"),
            "Admins": _sig(f"OR('{msp}.admin')"),
        }
        definition["OrdererEndpoints"] = [o.address for o in topology.orderers]
    else:
        peer = topology.peer_of(org.name)
        definition["Policies"] = {
            "Readers": _sig(f"OR('{msp}.admin', '{msp}.peer', '{msp}.client')"),
            "Writers": _sig(f"OR('{msp}.admin', '{msp}.client')"),
            "Admins": _sig(f"OR('{msp}.admin')"),
            "Endorsement": _sig(f"OR('{msp}.peer')"),
        }
        definition["AnchorPeers"] = [{"Host": HOST, "Port": peer.port}]
    return definition


def _principals(topology: Topology, roles: tuple[str, ...]) -> str:
    return ", ".join(f"'{o.msp_id}.{role}'" for o in topology.peer_orgs for role in roles)


def _application_policies(topology: Topology) -> dict[str, dict[str, str]]:
    """The application group's policies, as signature policies (see the module doc).

    Each is the union of the orgs' own policies of that name (``_org``): any
    org's admin, peer or client reads; any org's admin or client writes; peers of
    a majority of the orgs endorse. A signature satisfies at most one principal,
    so two peers of one org never make a majority.
    """
    majority = len(topology.peer_orgs) // 2 + 1
    peers = _principals(topology, ("peer",))
    return {
        "Readers": _sig(f"OR({_principals(topology, ('admin', 'peer', 'client'))})"),
        "Writers": _sig(f"OR({_principals(topology, ('admin', 'client'))})"),
        "Admins": _meta("MAJORITY Admins"),
        "LifecycleEndorsement": _sig(f"OutOf({majority}, {peers})"),
        "Endorsement": _sig(f"OutOf({majority}, {peers})"),
    }


def configtx_document(
    layout: Layout, topology: Topology, batch_timeout_ms: int, raft_tick_ms: int
) -> dict[str, Any]:
    """The configtx.yaml content as a dict (deterministic for given inputs)."""
    if batch_timeout_ms <= 0 or raft_tick_ms <= 0:
        raise ChannelError("batch_timeout_ms and raft_tick_ms must be positive")
    consenters = []
    for o in topology.orderers:
        tls = layout.node_identity(topology.orderer_org.slug, o.name) / "tls" / "server.crt"
        consenters.append(
            {"Host": HOST, "Port": o.port, "ClientTLSCert": str(tls), "ServerTLSCert": str(tls)}
        )
    orderer_org = _org(layout, topology.orderer_org, topology)
    app_orgs = [_org(layout, o, topology) for o in topology.peer_orgs]
    standard = {
        "Readers": _meta("ANY Readers"),
        "Writers": _meta("ANY Writers"),
        "Admins": _meta("MAJORITY Admins"),
    }
    profile = {
        "Policies": standard,
        "Capabilities": {"V2_0": True},
        "Orderer": {
            "OrdererType": "etcdraft",
            "BatchTimeout": f"{batch_timeout_ms}ms",
            "BatchSize": {
                "MaxMessageCount": 500,
                "AbsoluteMaxBytes": "10 MB",
                "PreferredMaxBytes": "2 MB",
            },
            "EtcdRaft": {
                "Consenters": consenters,
                "Options": {
                    "TickInterval": f"{raft_tick_ms}ms",
                    "ElectionTick": ELECTION_TICK,
                    "HeartbeatTick": HEARTBEAT_TICK,
                    "MaxInflightBlocks": 5,
                    "SnapshotIntervalSize": SNAPSHOT_INTERVAL,
                },
            },
            "Organizations": [orderer_org],
            "Policies": {**standard, "BlockValidation": _meta("ANY Writers")},
            "Capabilities": {"V2_0": True},
        },
        "Application": {
            "Organizations": app_orgs,
            "Policies": _application_policies(topology),
            "Capabilities": {"V2_5": True},
        },
    }
    return {"Profiles": {PROFILE: profile}}


def write_configtx(
    layout: Layout,
    topology: Topology,
    batch_timeout_ms: int,
    raft_tick_ms: int,
    folder: Path | None = None,
) -> Path:
    """Write ``configtx.yaml`` into ``folder`` (default: the layout's configtx folder)."""
    path = (folder or layout.configtx_dir) / "configtx.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = configtx_document(layout, topology, batch_timeout_ms, raft_tick_ms)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def genesis_block(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    env_path: str,
    folder: Path | None = None,
) -> Path:
    """Run configtxgen on the configtx.yaml written in ``folder`` (default: the layout's
    configtx folder, whose block is the channel's genesis block); return the block's path."""
    folder = folder or layout.configtx_dir
    out = layout.genesis_block if folder == layout.configtx_dir else folder / "channel.block"
    done = subprocess.run(
        [
            str(install.binary("configtxgen")),
            "-configPath",
            str(folder),
            "-profile",
            PROFILE,
            "-channelID",
            topology.channel,
            "-outputBlock",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": env_path, "FABRIC_CFG_PATH": str(layout.config_dir)},
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ChannelError(f"configtxgen failed: {tail[0]}")
    return out


def configuration_for(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    batch_timeout_ms: int,
    raft_tick_ms: int,
    env_path: str,
    folder: Path,
) -> configtx_pb2.Config:
    """The channel configuration configtxgen makes for ``topology``, built in ``folder``.

    Every org's MSP folder must exist (configtxgen reads their CA certificates).
    """
    write_configtx(layout, topology, batch_timeout_ms, raft_tick_ms, folder)
    block = genesis_block(install, layout, topology, env_path, folder)
    return config_from_block(block.read_bytes())
