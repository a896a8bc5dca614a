"""The root error type.

Every error that reaches a user is an :class:`AnchorlineError` with a stable
code (``AL1001``…), a message that says what was wrong and what to do, and an
HTTP status hint. The web and Socket.IO layers turn it into JSON; the CLI
prints ``error AL1234: message`` and exits non-zero. Codes are listed in
``docs/errors.md`` and never reused.

Code ranges, one per domain package:
AL10xx general and configuration, AL11xx network, AL12xx identity and CA,
AL13xx Fabric Gateway client, AL14xx embedded ledger, AL15xx auth,
AL16xx events and store, AL17xx anchoring, AL18xx merkle, AL19xx settlement
and marketplace.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AnchorlineError(Exception):
    """Base of every error the project raises on purpose."""

    code: ClassVar[str] = "AL1000"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API returns for this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigError(AnchorlineError):
    """A setting is missing or has a value that cannot be used."""

    code = "AL1001"
    http_status = 500


class InvalidInput(AnchorlineError):
    """A request or command argument is malformed."""

    code = "AL1002"
    http_status = 400
