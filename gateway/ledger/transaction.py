"""The client's Transaction object: the endorsed envelope the creator signs and submits.

The :class:`Transaction` object is what ``Proposal.endorse()`` returns.
``bytes()`` is a serialized ``gateway.PreparedTransaction`` (transaction id
and envelope, for carrying to a signer elsewhere); ``digest()`` is the
SHA-256 of the envelope's payload, which is what the creator signs.
Building and parsing envelopes is :mod:`gateway.ledger.protocol.transaction`.
"""

from __future__ import annotations

import builtins

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from google.protobuf.message import DecodeError

from gateway.errors import InvalidInput
from gateway.identity.signing import sha256
from gateway.ledger.client import Client
from gateway.ledger.commit import Commit
from gateway.ledger.protocol.transaction import parse_envelope, transaction_result


class Transaction:
    """An endorsed transaction, ready to be signed and submitted for ordering."""

    def __init__(
        self,
        client: Client,
        envelope: common_pb2.Envelope,
        *,
        transaction_id: str,
        channel_id: str,
    ) -> None:
        self._client = client
        self._envelope = envelope
        self._transaction_id = transaction_id
        self._channel_id = channel_id
        self._result: builtins.bytes | None = None

    @classmethod
    def from_bytes(
        cls, client: Client, data: builtins.bytes, signature: builtins.bytes | None = None
    ) -> Transaction:
        """A transaction from :meth:`bytes` (made elsewhere), optionally with its signature."""
        try:
            prepared = gateway_pb2.PreparedTransaction.FromString(data)
        except DecodeError as exc:
            raise InvalidInput(f"malformed prepared transaction: {exc}") from None
        envelope = common_pb2.Envelope()
        envelope.CopyFrom(prepared.envelope)
        if signature is not None:
            envelope.signature = signature
        info = parse_envelope(envelope)
        return cls(
            client,
            envelope,
            transaction_id=str(prepared.transaction_id) or info.transaction_id,
            channel_id=info.channel_id,
        )

    @property
    def transaction_id(self) -> str:
        return self._transaction_id

    @property
    def channel_id(self) -> str:
        return self._channel_id

    @property
    def result(self) -> builtins.bytes:
        """The chaincode's result, as endorsed."""
        if self._result is None:
            self._result = transaction_result(self._envelope)
        return self._result

    @property
    def envelope(self) -> common_pb2.Envelope:
        return self._envelope

    def bytes(self) -> builtins.bytes:
        """A serialized ``gateway.PreparedTransaction`` (id and envelope)."""
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=self._transaction_id, envelope=self._envelope
        )
        return bytes(prepared.SerializeToString())

    def digest(self) -> builtins.bytes:
        """SHA-256 of the envelope's payload: what the creator signs."""
        return sha256(self._envelope.payload)

    def with_signature(self, signature: builtins.bytes) -> Transaction:
        """The same transaction carrying a signature made elsewhere."""
        envelope = common_pb2.Envelope(payload=self._envelope.payload, signature=signature)
        return Transaction(
            self._client,
            envelope,
            transaction_id=self._transaction_id,
            channel_id=self._channel_id,
        )

    async def submit(self, *, timeout: float | None = None) -> Commit:
        """Send the signed transaction for ordering; a handle to await its commit."""
        if not self._envelope.signature:
            self._envelope.signature = self._client.sign_digest(
                self.digest(), what="transaction", transaction_id=self._transaction_id
            )
        request = gateway_pb2.SubmitRequest(
            transaction_id=self._transaction_id,
            channel_id=self._channel_id,
            prepared_transaction=self._envelope,
        )
        submit_started_at = self._client.note_submitted()
        await self._client.submit(request, timeout=timeout)
        submitted_at = self._client.note_submitted()
        return Commit(
            self._client,
            transaction_id=self._transaction_id,
            channel_id=self._channel_id,
            submit_request=request,
            # Parsed only if asked for: most callers of submit_async never look.
            result=lambda: self.result,
            submitted_at=submitted_at,
            submit_started_at=submit_started_at,
        )
