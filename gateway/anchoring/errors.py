"""Errors of the trust path (codes AL17xx; listed in docs/errors.md)."""

from __future__ import annotations

from gateway.errors import AnchorlineError


class AnchoringError(AnchorlineError):
    """Base of the anchoring package's errors."""

    code = "AL1700"
    http_status = 500


class BacklogFull(AnchoringError):
    """Too many accepted events are not yet anchored: the gateway sheds load."""

    code = "AL1701"
    http_status = 503


class ProofNotReady(AnchoringError):
    """The event exists but is not in a batch yet, so it has no inclusion proof."""

    code = "AL1702"
    http_status = 409


class BatchRefused(AnchoringError):
    """The anchor chaincode refused a batch for a reason a retry cannot fix."""

    code = "AL1703"
    http_status = 502


class StoreDamaged(AnchoringError):
    """The store's batch records or leaves do not agree with its events or each other."""

    code = "AL1704"
    http_status = 500


class BadLogRange(AnchoringError):
    """A consistency request names sizes the channel log cannot relate."""

    code = "AL1705"
    http_status = 400


class LedgerCheckFailed(AnchoringError):
    """The ledger does not confirm what a proof or the store claims."""

    code = "AL1706"
    http_status = 502


class AnchoringUnavailable(AnchoringError):
    """The gateway runs without the trust path (anchoring disabled or not started)."""

    code = "AL1707"
    http_status = 503


class LeaseLost(AnchoringError):
    """A trust-path write was refused: this process no longer holds the anchor lease.

    Another gateway took the lease over (this one stalled past the lease's
    expiry); the write is dropped so two anchorers never write the outbox.
    """

    code = "AL1720"
    http_status = 503


# -- the gateway's key history (AL173x, gateway.anchoring.keyhistory) -----------------------


class GatewayKeyRetired(AnchoringError):
    """The gateway is configured with a key the key history retired."""

    code = "AL1730"
    http_status = 500


class GatewayKeyUnknown(AnchoringError):
    """The configured key is not the key history's current key (rotate to it first)."""

    code = "AL1731"
    http_status = 500


class KeyHistoryError(AnchoringError):
    """The key history document is malformed, or a rotation cannot be recorded."""

    code = "AL1732"
    http_status = 400
