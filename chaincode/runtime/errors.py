"""Errors a contract raises on purpose.

A :class:`ChaincodeError` becomes a Fabric response with status 500 and the
message ``"<reason>: <text>"``; the client sees it as
``chaincode response 500, <reason>: <text>``. ``reason`` is one of
:data:`REASONS` and is stable, so the gateway can map it without parsing prose.
Any other exception is a bug: it is logged with its traceback and answered with
``internal: <function> failed (<ExceptionType>)``, never with its text, so no
state or payload leaks into the response.
"""

from __future__ import annotations

from typing import Final

#: Reasons a refusal can carry, stable across versions.
REASONS: Final = frozenset(
    {
        "bad_input",  # malformed, oversized or missing argument; unknown function
        "not_found",  # the named record does not exist
        "conflict",  # the request contradicts the ledger (fork, different root, wrong state)
        "forbidden",  # the creator's identity may not do this
        "expired",  # a deadline has passed
        "internal",  # a bug in the chaincode
    }
)


class ChaincodeError(Exception):
    """A refusal with a stable ``reason`` and a message a user can act on."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown chaincode error reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class BadInput(ChaincodeError):
    def __init__(self, message: str) -> None:
        super().__init__("bad_input", message)


class NotFound(ChaincodeError):
    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)


class Conflict(ChaincodeError):
    def __init__(self, message: str) -> None:
        super().__init__("conflict", message)


class Forbidden(ChaincodeError):
    def __init__(self, message: str) -> None:
        super().__init__("forbidden", message)


class Expired(ChaincodeError):
    def __init__(self, message: str) -> None:
        super().__init__("expired", message)
