"""A channel, as seen through a Gateway: its contracts and its chaincode events."""

from __future__ import annotations

from gateway.ledger.client import Client
from gateway.ledger.commit import Commit
from gateway.ledger.contract import Contract
from gateway.ledger.events import ChaincodeEventStream, Checkpointer
from gateway.ledger.protocol.events import Checkpoint


class Network:
    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    def contract(self, chaincode: str, contract_name: str = "") -> Contract:
        """A chaincode on this channel (``contract_name`` selects one contract in it)."""
        return Contract(self.client, self.name, chaincode, contract_name)

    def commit(self, transaction_id: str) -> Commit:
        """A transaction submitted earlier, by id: ``status()`` asks the peer how it ended."""
        return Commit(self.client, transaction_id=transaction_id, channel_id=self.name)

    def chaincode_events(
        self,
        chaincode: str,
        *,
        start_block: int | None = None,
        after_transaction_id: str = "",
        checkpoint: Checkpoint | Checkpointer | None = None,
    ) -> ChaincodeEventStream:
        """Events of ``chaincode``, in ledger order.

        Resumes after ``checkpoint`` when it holds a position; otherwise starts
        after the transaction ``after_transaction_id`` (the peer finds its
        block), or at ``start_block``; otherwise at the next block committed.
        """
        position = checkpoint.checkpoint if isinstance(checkpoint, Checkpointer) else checkpoint
        if position is None and after_transaction_id:
            position = Checkpoint(start_block or 0, after_transaction_id)
        elif position is None and start_block is not None:
            position = Checkpoint(start_block)
        return ChaincodeEventStream(
            self.client, channel_id=self.name, chaincode=chaincode, checkpoint=position
        )
