"""Chaincode event messages: the events request and the events a response carries.

- :class:`ChaincodeEvent` — one event, with the block and transaction that emitted it.
- :class:`Checkpoint` — where to resume: a block number and, optionally, the
  id of the last transaction already processed in that block. JSON-able.
- :func:`build_events_request` — serialized ``gateway.ChaincodeEventsRequest``
  starting at a checkpoint (``Specified`` block + ``after_transaction_id``),
  or at the next commit when there is none.
- :func:`events_of` — the events of one ``gateway.ChaincodeEventsResponse``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2

from gateway.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class ChaincodeEvent:
    block_number: int
    transaction_id: str
    chaincode: str
    event_name: str
    payload: bytes


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Resume position: events from ``block_number`` on, after ``transaction_id`` if set."""

    block_number: int
    transaction_id: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {"block_number": self.block_number, "transaction_id": self.transaction_id}
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            data = json.loads(text)
            block = data["block_number"]
            tx_id = data.get("transaction_id", "")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"not a chaincode event checkpoint: {exc}") from None
        if not isinstance(block, int) or block < 0 or not isinstance(tx_id, str):
            raise InvalidInput("not a chaincode event checkpoint: bad block number or id")
        return cls(block, tx_id)

    def after(self, event: ChaincodeEvent) -> Checkpoint:
        """The checkpoint once ``event`` has been handled."""
        return Checkpoint(event.block_number, event.transaction_id)


def build_events_request(
    *,
    channel_id: str,
    chaincode: str,
    identity: bytes,
    checkpoint: Checkpoint | None,
) -> bytes:
    """A serialized ``gateway.ChaincodeEventsRequest`` resuming at ``checkpoint``."""
    if checkpoint is None:
        position = ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    else:
        position = ab_pb2.SeekPosition(
            specified=ab_pb2.SeekSpecified(number=checkpoint.block_number)
        )
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_id,
        chaincode_id=chaincode,
        identity=identity,
        start_position=position,
        after_transaction_id=checkpoint.transaction_id if checkpoint else "",
    )
    return bytes(request.SerializeToString())


def events_of(response: gateway_pb2.ChaincodeEventsResponse) -> Iterator[ChaincodeEvent]:
    """The events of one stream response, each with the response's block number."""
    block = int(response.block_number)
    for e in response.events:
        yield ChaincodeEvent(
            block_number=block,
            transaction_id=str(e.tx_id),
            chaincode=str(e.chaincode_id),
            event_name=str(e.event_name),
            payload=bytes(e.payload),
        )
