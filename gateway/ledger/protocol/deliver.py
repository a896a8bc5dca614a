"""The Deliver service's messages: the seek request and the filtered blocks it streams.

- :func:`build_seek_envelope` — a signed ``DELIVER_SEEK_INFO`` envelope asking
  for every block from a given number (or from the newest) on, or for a range.
- :func:`filtered_statuses` — each transaction's id and validation code in a
  ``FilteredBlock``, in block order.
"""

from __future__ import annotations

from collections.abc import Iterator

from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2

from gateway.identity.signing import Signer, sha256
from gateway.ledger.protocol.proposal import header_timestamp, new_nonce, transaction_id

_MAX_BLOCK = 2**64 - 1


def _position(number: int | None) -> ab_pb2.SeekPosition:
    if number is None:
        return ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=number))


def build_seek_envelope(
    channel_id: str,
    creator: bytes,
    signer: Signer,
    start_block: int | None,
    *,
    stop_block: int | None = _MAX_BLOCK,
) -> common_pb2.Envelope:
    """A signed ``DELIVER_SEEK_INFO`` envelope: the blocks from ``start_block`` to
    ``stop_block`` (default: every block from then on; None for either: the newest)."""
    nonce = new_nonce()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.DELIVER_SEEK_INFO,
        channel_id=channel_id,
        tx_id=transaction_id(nonce, creator),
        timestamp=header_timestamp(None),
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    seek = ab_pb2.SeekInfo(
        start=_position(start_block),
        stop=_position(stop_block),
        behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY,
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=seek.SerializeToString(),
    )
    payload_bytes = payload.SerializeToString()
    return common_pb2.Envelope(payload=payload_bytes, signature=signer.sign(sha256(payload_bytes)))


def filtered_statuses(block: events_pb2.FilteredBlock) -> Iterator[tuple[str, int]]:
    """``(transaction id, validation code)`` of each transaction in ``block``."""
    for tx in block.filtered_transactions:
        yield str(tx.txid), int(tx.tx_validation_code)
