"""Errors of the Fabric Gateway client (codes AL13xx), one type per stage.

Every failure of a ledger call reaches the caller as one of these, never as
a gRPC exception. Each carries the ``transaction_id`` (empty when the call
had none), the gRPC ``status`` name the peer gave, and ``peer_details``: each
peer's or orderer's own message (``address``, ``msp_id``, ``message``).

As in fabric-gateway, the stage is the type: whatever goes wrong while
endorsing is an :class:`EndorseError` (a timeout, no reachable peer and a
refused identity included), so one ``except`` per stage catches everything
that stage raises. The stages:

- :class:`EvaluateError`, :class:`EndorseError` — the proposal was refused;
  ``chaincode_message`` is the chaincode's own error text when the chaincode
  failed ("chaincode response 500, <message>").
- :class:`SubmitError` — the orderer refused the transaction.
- :class:`CommitStatusError` — the commit status could not be obtained.
- :class:`EventStreamError` — the chaincode event stream failed.
- :class:`CommitError` — the transaction was committed INVALID;
  ``validation_code_name`` is Fabric's name (e.g. ``MVCC_READ_CONFLICT``).

Across stages, the kind of failure is a second base with its own code:
:class:`LedgerTimeout` (AL1306), :class:`LedgerUnavailable` (AL1307),
:class:`LedgerPermissionDenied` (AL1308). ``EndorseTimeout`` is both an
``EndorseError`` and a ``LedgerTimeout``; its code is the kind's. ``stage``
(a class attribute: "endorse", "submit", …) names the stage in messages and
in the error's JSON details.

- :class:`SignatureRequired` — a step needs a signature and the client has no signer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from gateway.errors import AnchorlineError
from gateway.ledger.transport import PeerErrorDetail, StatusCode

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
    #: The stage that failed, set by each stage's type ("" outside any stage).
    stage: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        transaction_id: str = "",
        status: str = "",
        peer_details: Sequence[PeerErrorDetail] = (),
    ) -> None:
        super().__init__(
            message,
            transaction_id=transaction_id,
            status=status,
            stage=self.stage,
            peers=[
                {"address": d.address, "msp_id": d.msp_id, "message": d.message}
                for d in peer_details
            ],
        )
        self.transaction_id = transaction_id
        self.status = status
        self.peer_details = tuple(peer_details)


class LedgerTimeout(LedgerError):
    """A ledger call did not finish within its deadline (the stage's type says which)."""

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
    """Evaluating failed: a peer refused (see ``chaincode_message``, ``peer_details``) or
    could not answer (then it is also a :class:`LedgerTimeout`, … )."""

    code = "AL1301"
    stage = "evaluate"


class EndorseError(_ProposalRefused):
    """Endorsement failed (see ``chaincode_message`` and each peer's ``peer_details``)."""

    code = "AL1302"
    stage = "endorse"


class SubmitError(LedgerError):
    """Submitting failed: the ordering service did not accept the transaction."""

    code = "AL1303"
    stage = "submit"


class CommitStatusError(LedgerError):
    """The transaction's commit status could not be obtained."""

    code = "AL1304"
    stage = "commit status"


class EventStreamError(LedgerError):
    """The chaincode event stream failed and could not be resumed."""

    code = "AL1310"
    stage = "chaincode events"


class CommitError(LedgerError):
    """The transaction was committed to a block but marked invalid."""

    code = "AL1305"
    http_status = 409
    stage = "commit"

    def __init__(
        self,
        message: str,
        *,
        transaction_id: str,
        validation_code: int,
        validation_code_name: str,
        block_number: int,
    ) -> None:
        super().__init__(message, transaction_id=transaction_id)
        self.details.update(
            validation_code=validation_code,
            validation_code_name=validation_code_name,
            block_number=block_number,
        )
        self.validation_code = validation_code
        self.validation_code_name = validation_code_name
        self.block_number = block_number


# Each stage's timeout, unreachable peer and refused identity: the stage's type
# and the kind's (whose code and HTTP status come first in the MRO).


class EvaluateTimeout(LedgerTimeout, EvaluateError):
    """Evaluating did not finish within its deadline."""


class EvaluateUnavailable(LedgerUnavailable, EvaluateError):
    """No peer could be reached to evaluate."""


class EvaluatePermissionDenied(LedgerPermissionDenied, EvaluateError):
    """The peer refused the identity for evaluating."""


class EndorseTimeout(LedgerTimeout, EndorseError):
    """Endorsement did not finish within its deadline."""


class EndorseUnavailable(LedgerUnavailable, EndorseError):
    """No peer could be reached to endorse."""


class EndorsePermissionDenied(LedgerPermissionDenied, EndorseError):
    """The peer refused the identity for endorsing."""


class SubmitTimeout(LedgerTimeout, SubmitError):
    """Submitting did not finish within its deadline (the transaction may still commit)."""


class SubmitUnavailable(LedgerUnavailable, SubmitError):
    """No peer (or orderer) could be reached to submit."""


class SubmitPermissionDenied(LedgerPermissionDenied, SubmitError):
    """The peer or orderer refused the identity for submitting."""


class CommitStatusTimeout(LedgerTimeout, CommitStatusError):
    """No commit status before the deadline; the transaction may still commit."""


class CommitStatusUnavailable(LedgerUnavailable, CommitStatusError):
    """No peer could be reached to ask for the commit status."""


class CommitStatusPermissionDenied(LedgerPermissionDenied, CommitStatusError):
    """The peer refused the identity for asking the commit status."""


class EventStreamTimeout(LedgerTimeout, EventStreamError):
    """The chaincode event stream did not answer within its deadline."""


class EventStreamUnavailable(LedgerUnavailable, EventStreamError):
    """No peer could be reached for the chaincode event stream."""


class EventStreamPermissionDenied(LedgerPermissionDenied, EventStreamError):
    """The peer refused the identity for the chaincode event stream."""


#: A stage's type: what :func:`stage_error` is given.
StageError = EvaluateError | EndorseError | SubmitError | CommitStatusError | EventStreamError

_KINDS: dict[type[StageError], dict[StatusCode, type[LedgerError]]] = {
    EvaluateError: {
        StatusCode.DEADLINE_EXCEEDED: EvaluateTimeout,
        StatusCode.UNAVAILABLE: EvaluateUnavailable,
        StatusCode.PERMISSION_DENIED: EvaluatePermissionDenied,
    },
    EndorseError: {
        StatusCode.DEADLINE_EXCEEDED: EndorseTimeout,
        StatusCode.UNAVAILABLE: EndorseUnavailable,
        StatusCode.PERMISSION_DENIED: EndorsePermissionDenied,
    },
    SubmitError: {
        StatusCode.DEADLINE_EXCEEDED: SubmitTimeout,
        StatusCode.UNAVAILABLE: SubmitUnavailable,
        StatusCode.PERMISSION_DENIED: SubmitPermissionDenied,
    },
    CommitStatusError: {
        StatusCode.DEADLINE_EXCEEDED: CommitStatusTimeout,
        StatusCode.UNAVAILABLE: CommitStatusUnavailable,
        StatusCode.PERMISSION_DENIED: CommitStatusPermissionDenied,
    },
    EventStreamError: {
        StatusCode.DEADLINE_EXCEEDED: EventStreamTimeout,
        StatusCode.UNAVAILABLE: EventStreamUnavailable,
        StatusCode.PERMISSION_DENIED: EventStreamPermissionDenied,
    },
}


def stage_error(stage: type[StageError], status: StatusCode) -> type[LedgerError]:
    """The type for a failure of ``status`` at ``stage`` (one of the stage types).

    DEADLINE_EXCEEDED, UNAVAILABLE and PERMISSION_DENIED give the stage's timeout,
    unavailable and permission-denied types; any other status the stage's own type.
    """
    return _KINDS[stage].get(status, stage)


class SignatureRequired(LedgerError):
    """A step needs a signature: give the client a signer, or sign its digest offline."""

    code = "AL1309"
    http_status = 400

    def __init__(self, message: str, *, transaction_id: str = "", step: str = "") -> None:
        super().__init__(message, transaction_id=transaction_id)
        # Which message needed the signature (proposal, transaction, …).
        self.details["step"] = step
        self.step = step
