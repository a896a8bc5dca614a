"""Errors of the marketplace and settlement package (codes AL19xx).

Each refusal says what was wrong and what the caller can do about it; the
codes are listed in ``docs/errors.md``.
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class MarketplaceError(AnchorlineError):
    """Base of the marketplace's errors."""

    code = "AL1900"
    http_status = 400


class AuctionNotFound(MarketplaceError):
    """No auction is open or closed under that id on this gateway."""

    code = "AL1901"
    http_status = 404


class InvalidAuction(MarketplaceError):
    """The auction terms are malformed (item, reserve, deadline)."""

    code = "AL1903"


class InvalidBid(MarketplaceError):
    """A bid's payload is not ``{"amount": positive integer}`` or is below the reserve."""

    code = "AL1904"


class NotAParty(MarketplaceError):
    """Only the auction's seller or its winning bidder may do this."""

    code = "AL1905"
    http_status = 403


class NoWinner(MarketplaceError):
    """The auction closed without a valid bid, so there is nothing to settle."""

    code = "AL1906"
    http_status = 409


class NotAnchoredYet(MarketplaceError):
    """The winning bid's batch is not anchored yet; retry once its status is confirmed."""

    code = "AL1907"
    http_status = 409


class PreparedNotFound(MarketplaceError):
    """No prepared transaction with that id is waiting for this session (or it expired)."""

    code = "AL1908"
    http_status = 404


class FunctionNotOffered(MarketplaceError):
    """The gateway prepares only settlement and access contract transactions."""

    code = "AL1909"
    http_status = 403


class LedgerNotReady(MarketplaceError):
    """The gateway has no ledger connection (marketplace disabled or ledger not started)."""

    code = "AL1910"
    http_status = 503


class SignedBytesMismatch(MarketplaceError):
    """The client refused to sign: what the gateway prepared is not what was asked for."""

    code = "AL1911"
    http_status = 400


class MarketStateUnknown(MarketplaceError):
    """The auction behind a channel is not loaded (the gateway is starting, or its stored
    state could not be read): the event was not accepted; retry shortly."""

    code = "AL1912"
    http_status = 503


class InvalidQuery(MarketplaceError):
    """A listing's query parameter is out of range (state, limit, after)."""

    code = "AL1913"
