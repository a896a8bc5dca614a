"""Commit status: how a submitted transaction ended.

The messages are built by :mod:`gateway.ledger.protocol.commit`.

:class:`Commit` is the handle ``Transaction.submit()`` returns. Its
``status()`` always runs under a deadline and, when the status does not come
in time, resubmits the same signed transaction (same id) and asks again, so a
transaction lost by the ordering service (a Raft leader dying at that moment)
is recovered instead of waited on forever. ``bytes()``/``digest()`` expose
the commit status request for offline signing.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable

from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from gateway.identity.signing import sha256
from gateway.ledger.client import Client
from gateway.ledger.errors import CommitError
from gateway.ledger.protocol.commit import build_commit_status_request, validation_code_name


@dataclasses.dataclass(frozen=True)
class Status:
    """A transaction's commit status."""

    transaction_id: str
    code: int
    block_number: int

    @property
    def code_name(self) -> str:
        return validation_code_name(self.code)

    @property
    def successful(self) -> bool:
        return self.code == 0  # TxValidationCode.VALID

    def raise_for_status(self) -> None:
        """Raise :class:`CommitError` unless the transaction committed VALID."""
        if not self.successful:
            raise CommitError(
                f"transaction {self.transaction_id} was committed in block {self.block_number} "
                f"as invalid ({self.code_name})"
                + (
                    ": another transaction changed what it read; retry it"
                    if self.code == transaction_pb2.MVCC_READ_CONFLICT
                    else ""
                ),
                transaction_id=self.transaction_id,
                validation_code=self.code,
                validation_code_name=self.code_name,
                block_number=self.block_number,
            )


class Commit:
    """A submitted transaction whose commit can be awaited."""

    def __init__(
        self,
        client: Client,
        *,
        transaction_id: str,
        channel_id: str,
        submit_request: gateway_pb2.SubmitRequest | None = None,
        result: builtins.bytes | Callable[[], builtins.bytes] = b"",
        request_bytes: builtins.bytes | None = None,
        signature: builtins.bytes | None = None,
        submitted_at: float | None = None,
        submit_started_at: float | None = None,
    ) -> None:
        self._submitted_at = submitted_at
        self._submit_started_at = submit_started_at
        self._client = client
        self._transaction_id = transaction_id
        self._channel_id = channel_id
        self._submit_request = submit_request
        self._result = result
        self._request_bytes = (
            request_bytes
            if request_bytes is not None
            else build_commit_status_request(transaction_id, channel_id, client.creator)
        )
        self._signature = signature

    @property
    def transaction_id(self) -> str:
        return self._transaction_id

    @property
    def channel_id(self) -> str:
        return self._channel_id

    @property
    def result(self) -> builtins.bytes:
        """The chaincode's result, as endorsed (empty when unknown to this handle)."""
        if callable(self._result):
            self._result = self._result()
        return self._result

    def bytes(self) -> builtins.bytes:
        """The serialized ``gateway.CommitStatusRequest`` to sign."""
        return self._request_bytes

    def digest(self) -> builtins.bytes:
        return sha256(self._request_bytes)

    def with_signature(self, signature: builtins.bytes) -> Commit:
        """The same handle, its status request signed elsewhere."""
        return Commit(
            self._client,
            transaction_id=self._transaction_id,
            channel_id=self._channel_id,
            submit_request=self._submit_request,
            result=self._result,
            request_bytes=self._request_bytes,
            signature=signature,
            submitted_at=self._submitted_at,
            submit_started_at=self._submit_started_at,
        )

    async def status(self, *, timeout: float | None = None) -> Status:
        """Wait for the commit status (with a deadline, resubmitting when it does not come)."""
        response = await self._client.commit_status(
            self._signed_request,
            transaction_id=self._transaction_id,
            resubmit=self._submit_request,
            submitted_at=self._submitted_at,
            submit_started_at=self._submit_started_at,
            channel_id=self._channel_id,
            timeout=timeout,
        )
        return Status(
            transaction_id=self._transaction_id,
            code=int(response.result),
            block_number=int(response.block_number),
        )

    def _signed_request(self) -> gateway_pb2.SignedCommitStatusRequest:
        # Built only when a CommitStatus call is needed: the filtered-block stream
        # answers most transactions without one.
        if self._signature is None:
            self._signature = self._client.sign_digest(
                self.digest(), what="commit status request", transaction_id=self._transaction_id
            )
        return gateway_pb2.SignedCommitStatusRequest(
            request=self._request_bytes, signature=self._signature
        )
