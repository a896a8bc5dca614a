"""Channel creation and channel configuration updates.

Creation: every orderer joins with ``osnadmin channel join`` on its admin
endpoint (mutual TLS), then every peer with ``peer channel join`` (see
:mod:`network.peercli`). The genesis block already carries the anchor peers
and orderer endpoints, so no further update is needed to form the consortium.

Updates: :func:`publish_crl` puts an org's CRL into the org's MSP definition in
the channel configuration, so Fabric peers themselves refuse the revoked
certificates (the gateway reads the same CRL from the profile's ``crl_path``).
Changing an org's MSP needs only that org's admin signature (the org group's
``Admins`` policy), so one org can publish its revocations alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2

from network import nodes, peercli
from network.errors import ChannelError
from network.install import FabricInstall
from network.layout import Layout
from network.topology import OrgSpec, Topology


def _config_from_block(block_bytes: bytes) -> configtx_pb2.Config:
    block = common_pb2.Block.FromString(block_bytes)
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def with_revocation_list(
    config: configtx_pb2.Config, msp_id: str, crls: list[bytes]
) -> configtx_pb2.Config:
    """A copy of ``config`` whose ``msp_id`` MSP carries exactly ``crls`` (PEM)."""
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    value = updated.channel_group.groups["Application"].groups[msp_id].values["MSP"]
    msp = msp_config_pb2.MSPConfig.FromString(value.value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    del fabric.revocation_list[:]
    fabric.revocation_list.extend(crls)
    msp.config = fabric.SerializeToString()
    value.value = msp.SerializeToString()
    return updated


def revocation_list(config: configtx_pb2.Config, msp_id: str) -> list[bytes]:
    value = config.channel_group.groups["Application"].groups[msp_id].values["MSP"]
    msp = msp_config_pb2.MSPConfig.FromString(value.value)
    return list(msp_config_pb2.FabricMSPConfig.FromString(msp.config).revocation_list)


def update_envelope(channel: str, config_update: bytes) -> bytes:
    """The unsigned CONFIG_UPDATE envelope that ``peer channel update`` signs and sends."""
    header = common_pb2.ChannelHeader(type=common_pb2.CONFIG_UPDATE, channel_id=channel)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=configtx_pb2.ConfigUpdateEnvelope(config_update=config_update).SerializeToString(),
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def publish_crl(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    org: OrgSpec,
    orderer_args: list[str],
    env_path: str,
    timeout: float = 30,
) -> bool:
    """Put ``org``'s current CRL into the channel; wait until every peer has the new config.

    Returns False when the channel already carries exactly this CRL.
    """
    configtxlator = install.binary("configtxlator")
    if not os.access(configtxlator, os.X_OK):
        raise ChannelError(f"{configtxlator} is missing: it is needed to update the channel")
    env = peercli.admin_env(install, layout, topology, org.name, env_path)
    peer_bin = str(install.binary("peer"))
    channel = topology.channel
    crl = layout.crl_file(org.slug).read_bytes()
    with tempfile.TemporaryDirectory(dir=layout.root, prefix=".config-update-") as tmp:
        work = Path(tmp)
        peercli.run(
            [
                peer_bin,
                "channel",
                "fetch",
                "config",
                str(work / "config.block"),
                "-c",
                channel,
                *orderer_args,
            ],
            env,
            "fetch the channel configuration",
        )
        original = _config_from_block((work / "config.block").read_bytes())
        if revocation_list(original, org.msp_id) == [crl]:
            return False
        updated = with_revocation_list(original, org.msp_id, [crl])
        (work / "original.pb").write_bytes(original.SerializeToString())
        (work / "updated.pb").write_bytes(updated.SerializeToString())
        peercli.run(
            [
                str(configtxlator),
                "compute_update",
                "--channel_id",
                channel,
                "--original",
                str(work / "original.pb"),
                "--updated",
                str(work / "updated.pb"),
                "--output",
                str(work / "update.pb"),
            ],
            {"PATH": env_path},
            "compute the channel update",
        )
        (work / "update.tx").write_bytes(
            update_envelope(channel, (work / "update.pb").read_bytes())
        )
        before = max(nodes.height(p.ops_port, channel) or 0 for p in topology.peers)
        peercli.run(
            [
                peer_bin,
                "channel",
                "update",
                "-f",
                str(work / "update.tx"),
                "-c",
                channel,
                *orderer_args,
            ],
            env,
            f"update {org.msp_id}'s revocation list in channel {channel}",
        )
    deadline = time.monotonic() + timeout
    while any((nodes.height(p.ops_port, channel) or 0) <= before for p in topology.peers):
        if time.monotonic() > deadline:
            raise ChannelError(f"the peers did not commit the configuration update in {timeout} s")
        time.sleep(0.05)
    return True
