"""Channel configuration edits for publishing a CRL (no network needed)."""

from __future__ import annotations

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2

from network.channel import revocation_list, update_envelope, with_revocation_list


def _config() -> configtx_pb2.Config:
    config = configtx_pb2.Config()
    for msp_id in ("Org1MSP", "Org2MSP"):
        fabric = msp_config_pb2.FabricMSPConfig(
            name=msp_id, root_certs=[b"ROOT " + msp_id.encode()]
        )
        msp = msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString())
        group = config.channel_group.groups["Application"].groups[msp_id]
        group.values["MSP"].value = msp.SerializeToString()
        group.values["MSP"].version = 3
    return config


def test_revocation_list_is_replaced_for_one_org_only() -> None:
    original = _config()
    updated = with_revocation_list(original, "Org1MSP", [b"CRL PEM"])
    assert revocation_list(updated, "Org1MSP") == [b"CRL PEM"]
    assert revocation_list(updated, "Org2MSP") == []
    assert revocation_list(original, "Org1MSP") == []  # the original is untouched
    again = with_revocation_list(updated, "Org1MSP", [b"NEWER CRL"])
    assert revocation_list(again, "Org1MSP") == [b"NEWER CRL"]
    msp = msp_config_pb2.MSPConfig.FromString(
        again.channel_group.groups["Application"].groups["Org1MSP"].values["MSP"].value
    )
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    assert list(fabric.root_certs) == [b"ROOT Org1MSP"]


def test_update_envelope_is_a_config_update_for_the_channel() -> None:
    envelope = common_pb2.Envelope.FromString(update_envelope("anchorline", b"UPDATE"))
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert header.type == common_pb2.CONFIG_UPDATE and header.channel_id == "anchorline"
    update = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
    assert update.config_update == b"UPDATE" and not update.signatures
