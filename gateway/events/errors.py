"""Errors of the events and store packages (codes AL16xx)."""

from __future__ import annotations

from gateway.errors import AnchorlineError


class EventError(AnchorlineError):
    """Base of the events package's errors."""

    code = "AL1600"
    http_status = 400


class MalformedEvent(EventError):
    """An event lacks a field, has one of the wrong type or shape."""

    code = "AL1601"


class EventTooLarge(EventError):
    """An event's canonical form is larger than the configured limit."""

    code = "AL1602"
    http_status = 413


class BadEventSignature(EventError):
    """The event's signature does not verify against the session's certificate."""

    code = "AL1603"
    http_status = 401


class NotJoined(EventError):
    """The sender has not joined the event's channel."""

    code = "AL1604"
    http_status = 403


class EventNotFound(EventError):
    """No event with that channel and sequence is stored."""

    code = "AL1605"
    http_status = 404


class StoreUnavailable(EventError):
    """The event store could not commit; the event was not accepted."""

    code = "AL1606"
    http_status = 503


class Overloaded(EventError):
    """The gateway's commit queue is full; retry after a short pause."""

    code = "AL1607"
    http_status = 503


class EventUnreadable(EventError):
    """A stored event breaks the protocol's limits and cannot be served.

    The intake refuses such events; one can only be in the store from an
    older gateway or a damaged database. Pages and catch-up leave it out
    (with an error in the gateway log) instead of failing for everyone.
    """

    code = "AL1609"
    http_status = 422


class EmitRateLimited(EventError):
    """An identity or a connection used up its emit budget; ``details.retry_after``
    says in how many milliseconds the next event will be accepted."""

    code = "AL1610"
    http_status = 429


class DuplicateConflict(EventError):
    """An event id was reused with different content."""

    code = "AL1608"
    http_status = 409
