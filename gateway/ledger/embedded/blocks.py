"""Blocks as Fabric makes them: ``common.Block`` protos, hash-linked the same way.

- ``data_hash`` = SHA-256 of the concatenated envelopes (``protoutil.ComputeBlockDataHash``);
- the header hash = SHA-256 of the DER encoding of ``SEQUENCE { INTEGER number,
  OCTET STRING previous_hash, OCTET STRING data_hash }`` (``protoutil.BlockHeaderHash``);
- each block's ``previous_hash`` is the header hash of the block before it;
- metadata slot ``TRANSACTIONS_FILTER`` holds one validation code byte per
  transaction, slot ``SIGNATURES`` the orderer's signature over
  ``value + signature_header + header bytes``.

So a tool that walks a Fabric ledger's blocks walks these too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from fabric_protos.common import common_pb2
from fabric_protos.msp import msp_config_pb2

from gateway.identity.signing import Signer, sign_message

# Fabric's BlockMetadataIndex has five slots (two deprecated); they must all exist.
_METADATA_SLOTS = 5


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return b"\x02" + _der_length(len(body)) + body


def _der_octets(value: bytes) -> bytes:
    return b"\x04" + _der_length(len(value)) + value


def header_bytes(header: common_pb2.BlockHeader) -> bytes:
    """The ASN.1 DER bytes Fabric hashes for a block header."""
    body = (
        _der_integer(int(header.number))
        + _der_octets(bytes(header.previous_hash))
        + _der_octets(bytes(header.data_hash))
    )
    return b"\x30" + _der_length(len(body)) + body


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """SHA-256 of :func:`header_bytes`: what the next block's ``previous_hash`` holds."""
    return hashlib.sha256(header_bytes(header)).digest()


def data_hash(envelopes: Sequence[bytes]) -> bytes:
    """SHA-256 of the block's envelopes, concatenated in order."""
    digest = hashlib.sha256()
    for envelope in envelopes:
        digest.update(envelope)
    return digest.digest()


def new_block(
    number: int,
    previous_hash: bytes,
    envelopes: Sequence[bytes],
    validation_codes: Sequence[int],
    *,
    orderer_creator: bytes,
    orderer_signer: Signer,
) -> common_pb2.Block:
    """A complete block: header, data, transaction filter and orderer signature."""
    if len(envelopes) != len(validation_codes):
        raise ValueError("one validation code per envelope is required")
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.header.data_hash = data_hash(envelopes)
    block.data.data.extend(envelopes)
    metadata = [b""] * _METADATA_SLOTS
    metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(validation_codes)
    signature_header = common_pb2.SignatureHeader(
        creator=orderer_creator, nonce=hashlib.sha256(b"block%d" % number).digest()[:24]
    ).SerializeToString()
    value = b""
    signature = sign_message(orderer_signer, value + signature_header + header_bytes(block.header))
    metadata[common_pb2.SIGNATURES] = common_pb2.Metadata(
        value=value,
        signatures=[
            common_pb2.MetadataSignature(signature_header=signature_header, signature=signature)
        ],
    ).SerializeToString()
    block.metadata.metadata.extend(metadata)
    return block


def genesis_envelope(channel_id: str, msp_roots: Mapping[str, Sequence[bytes]]) -> bytes:
    """Block 0's one envelope: a CONFIG transaction naming the channel's MSPs and their CAs.

    Only the parts the embedded ledger uses are filled in (the application orgs'
    MSP configurations); it is not a channel configuration a Fabric peer could join.
    """
    from fabric_protos.common import configtx_pb2

    application = configtx_pb2.ConfigGroup()
    for msp_id, roots in sorted(msp_roots.items()):
        msp_value = msp_config_pb2.MSPConfig(
            type=0,
            config=msp_config_pb2.FabricMSPConfig(
                name=msp_id, root_certs=list(roots)
            ).SerializeToString(),
        )
        org = application.groups[msp_id]
        org.values["MSP"].value = msp_value.SerializeToString()
    config = configtx_pb2.Config(sequence=0)
    config.channel_group.groups["Application"].CopyFrom(application)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG, channel_id=channel_id, version=1
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=channel_header.SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=config).SerializeToString(),
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())
