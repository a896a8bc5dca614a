"""The channel configuration as blocks carry it: where it is, and its MSPs' CRLs.

- :func:`last_config_number` — the number of the newest config block, from any
  block's metadata (every block names it);
- :func:`config_of` — the ``common.Config`` of a config block (None for a block
  of other transactions);
- :func:`revocation_lists` — each application org's MSP ``revocation_list``
  (the CRLs Fabric peers honour for that org), by MSP id.
"""

from __future__ import annotations

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2


def last_config_number(block: common_pb2.Block) -> int:
    """The number of the config block in force at ``block``.

    Fabric 2.x writes it in the SIGNATURES metadata (``OrdererBlockMetadata``); the
    older LAST_CONFIG slot is read when that one holds none.
    """
    slots = block.metadata.metadata
    if len(slots) > common_pb2.SIGNATURES and slots[common_pb2.SIGNATURES]:
        value = common_pb2.Metadata.FromString(slots[common_pb2.SIGNATURES]).value
        if value:
            return int(common_pb2.OrdererBlockMetadata.FromString(value).last_config.index)
    if len(slots) > common_pb2.LAST_CONFIG and slots[common_pb2.LAST_CONFIG]:
        value = common_pb2.Metadata.FromString(slots[common_pb2.LAST_CONFIG]).value
        return int(common_pb2.LastConfig.FromString(value).index)
    return int(block.header.number)


def config_of(block: common_pb2.Block) -> configtx_pb2.Config | None:
    """The configuration a config block sets; None when ``block`` is no config block."""
    if len(block.data.data) != 1:
        return None  # a config transaction is alone in its block
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    if header.type != common_pb2.CONFIG:
        return None
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def revocation_lists(config: configtx_pb2.Config) -> dict[str, list[bytes]]:
    """MSP id → the CRLs (PEM, as Fabric stores them) of every application org."""
    out: dict[str, list[bytes]] = {}
    application = config.channel_group.groups.get("Application")
    if application is None:
        return out
    for name, org in application.groups.items():
        value = org.values.get("MSP")
        if value is None:
            continue
        msp = msp_config_pb2.MSPConfig.FromString(value.value)
        if msp.type != 0:  # only FABRIC MSPs carry a FabricMSPConfig
            continue
        fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
        out[fabric.name or name] = [bytes(c) for c in fabric.revocation_list]
    return out
