"""Errors of the Fabric Gateway client (codes AL13xx).

Every failure of a ledger call reaches the caller as one of these, never as
a gRPC exception. Each carries the ``transaction_id`` (empty when the call
had none), the gRPC ``status`` name the peer gave, and ``peer_details``: each
peer's or orderer's own message (``address``, ``msp_id``, ``message``).

- :class:`EvaluateError`, :class:`EndorseError` — the proposal was refused;
  ``chaincode_message`` is the chaincode's own error text when the chaincode
  failed ("chaincode response 500, <message>").
- :class:`SubmitError` — the orderer refused the transaction.
- :class:`CommitStatusError` — the commit status could not be obtained.
- :class:`CommitError` — the transaction was committed INVALID;
  ``validation_code_name`` is Fabric's name (e.g. ``MVCC_READ_CONFLICT``).
- :class:`LedgerTimeout`, :class:`LedgerUnavailable`,
  :class:`LedgerPermissionDenied` — whatever the stage (``stage`` says which).
- :class:`SignatureRequired` — a step needs a signature and the client has no signer.
- :class:`EventStreamError` — the chaincode event stream failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from gateway.errors import AnchorlineError
from gateway.ledger.transport import PeerErrorDetail

_CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)


def chaincode_error(text: str) -> tuple[int, str] | None:
    """``(status, message)`` from Fabric's "chaincode response <status>, <message>" text."""
    match = _CHAINCODE_RESPONSE.search(text)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


class LedgerError(AnchorlineError):
    """Base of the Fabric Gateway client's errors."""

    code: ClassVar[str] = "AL1300"
    http_status: ClassVar[int] = 502

    def __init__(
        self,
        message: str,
        *,
        transaction_id: str = "",
        status: str = "",
        peer_details: Sequence[PeerErrorDetail] = (),
        stage: str = "",
    ) -> None:
        super().__init__(
            message,
            transaction_id=transaction_id,
            status=status,
            stage=stage,
            peers=[
                {"address": d.address, "msp_id": d.msp_id, "message": d.message}
                for d in peer_details
            ],
        )
        self.transaction_id = transaction_id
        self.status = status
        self.peer_details = tuple(peer_details)
        self.stage = stage


class _ProposalRefused(LedgerError):
    @property
    def chaincode_status(self) -> int | None:
        found = self._chaincode()
        return None if found is None else found[0]

    @property
    def chaincode_message(self) -> str | None:
        """The chaincode's own error message, when the chaincode is what failed."""
        found = self._chaincode()
        return None if found is None else found[1]

    def _chaincode(self) -> tuple[int, str] | None:
        for text in (*(d.message for d in self.peer_details), self.message):
            found = chaincode_error(text)
            if found is not None:
                return found
        return None


class EvaluateError(_ProposalRefused):
    """A peer refused to evaluate the proposal (see ``chaincode_message``, ``peer_details``)."""

    code = "AL1301"


class EndorseError(_ProposalRefused):
    """Endorsement failed (see ``chaincode_message`` and each peer's ``peer_details``)."""

    code = "AL1302"


class SubmitError(LedgerError):
    """The ordering service did not accept the transaction."""

    code = "AL1303"


class CommitStatusError(LedgerError):
    """The transaction's commit status could not be obtained."""

    code = "AL1304"


class CommitError(LedgerError):
    """The transaction was committed to a block but marked invalid."""

    code = "AL1305"
    http_status = 409

    def __init__(
        self,
        message: str,
        *,
        transaction_id: str,
        validation_code: int,
        validation_code_name: str,
        block_number: int,
    ) -> None:
        super().__init__(message, transaction_id=transaction_id, stage="commit")
        self.details.update(
            validation_code=validation_code,
            validation_code_name=validation_code_name,
            block_number=block_number,
        )
        self.validation_code = validation_code
        self.validation_code_name = validation_code_name
        self.block_number = block_number


class LedgerTimeout(LedgerError):
    """A ledger call did not finish within its deadline."""

    code = "AL1306"
    http_status = 504


class LedgerUnavailable(LedgerError):
    """No peer (or orderer) could be reached for this call."""

    code = "AL1307"
    http_status = 503


class LedgerPermissionDenied(LedgerError):
    """The ledger refused the identity for this call (access control)."""

    code = "AL1308"
    http_status = 403


class SignatureRequired(LedgerError):
    """A step needs a signature: give the client a signer, or sign its digest offline."""

    code = "AL1309"
    http_status = 400


class EventStreamError(LedgerError):
    """The chaincode event stream failed and could not be resumed."""

    code = "AL1310"
