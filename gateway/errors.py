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


class JsonRefused(InvalidInput):
    """JSON input was refused by the strict reader (:mod:`gateway.strict_json`).

    Every subclass has its own code; ``details.at`` is the character offset
    when the reader knows it.
    """

    code = "AL1010"


class JsonSyntaxError(JsonRefused):
    """Not JSON: a syntax error, a truncated document or trailing data."""

    code = "AL1011"


class JsonInvalidUtf8(JsonRefused):
    """The bytes are not valid UTF-8."""

    code = "AL1012"


class JsonDuplicateKey(JsonRefused):
    """An object names the same key twice (parsers disagree on which one wins)."""

    code = "AL1013"


class JsonNonFiniteNumber(JsonRefused):
    """NaN, Infinity or -Infinity, or a number too large for a double (``1e400``)."""

    code = "AL1014"


class JsonIntegerOutOfRange(JsonRefused):
    """An integer beyond ±(2**53 − 1), which JavaScript and many parsers cannot hold."""

    code = "AL1015"


class JsonLoneSurrogate(JsonRefused):
    """A string or key holds a lone UTF-16 surrogate (for example ``\\ud800``)."""

    code = "AL1016"


class JsonTooDeep(JsonRefused):
    """Objects and arrays are nested deeper than the limit."""

    code = "AL1017"


class JsonTooLarge(JsonRefused):
    """The document is larger than the limit, in bytes."""

    code = "AL1018"
    http_status = 413


class JsonTooManyKeys(JsonRefused):
    """More object members, in total, than the limit."""

    code = "AL1019"


class JsonStringTooLong(JsonRefused):
    """A string or key is longer than the limit, in characters."""

    code = "AL1020"
