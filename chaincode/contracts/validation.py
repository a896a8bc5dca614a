"""Input validation shared by the contracts: every refusal names the field and the rule.

All checks raise :class:`~chaincode.runtime.errors.BadInput` (reason ``bad_input``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from chaincode.runtime import BadInput

HEX64 = re.compile(r"[0-9a-f]{64}")
#: Identifiers (batch, settlement ids; channel names): safe in composite keys and logs.
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
MSP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ZERO_ROOT = "0" * 64
MAX_UINT = 2**53 - 1  # exact in every JSON implementation


def parse_object(raw: str, what: str, fields: dict[str, bool]) -> dict[str, Any]:
    """A JSON object with exactly the known ``fields`` (name -> required)."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{what} must be a JSON object: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise BadInput(f"{what} is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise BadInput(f"{what} must be a JSON object")
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise BadInput(f"{what} has unknown field(s): {', '.join(unknown)}")
    missing = sorted(name for name, required in fields.items() if required and name not in doc)
    if missing:
        raise BadInput(f"{what} is missing field(s): {', '.join(missing)}")
    return doc


def ident(value: Any, field: str) -> str:
    if not isinstance(value, str) or not IDENT.fullmatch(value):
        raise BadInput(
            f"{field} must be 1-128 characters of letters, digits and . _ : / - "
            "(starting with a letter or digit)"
        )
    return value


def msp_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not MSP_ID.fullmatch(value):
        raise BadInput(f"{field} must be an MSP id (1-64 letters, digits, . _ -)")
    return value


def hex64(value: Any, field: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise BadInput(f"{field} must be 64 lower-case hex characters (a SHA-256 hash)")
    return value


def uint(value: Any, field: str, *, minimum: int = 0, maximum: int = MAX_UINT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{field} must be an integer")
    if not minimum <= value <= maximum:
        raise BadInput(f"{field} must be between {minimum} and {maximum}")
    return value


def uint_arg(value: str, field: str, *, minimum: int = 0, maximum: int = MAX_UINT) -> int:
    """An integer transaction argument given as decimal text."""
    if not re.fullmatch(r"0|[1-9][0-9]{0,15}", value):
        raise BadInput(f"{field} must be a non-negative decimal integer, not {value[:20]!r}")
    return uint(int(value), field, minimum=minimum, maximum=maximum)


def text(value: Any, field: str, *, max_len: int, allow_newlines: bool = False) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise BadInput(f"{field} must be a non-empty string of at most {max_len} characters")
    allowed = "\n\r" if allow_newlines else ""
    if any(ord(c) < 0x20 and c not in allowed for c in value):
        raise BadInput(f"{field} may not contain control characters")
    return value


def timestamp(value: Any, field: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp (``2026-11-25T12:00:00Z``, fractions allowed)."""
    if not isinstance(value, str) or not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", value
    ):
        raise BadInput(f"{field} must be an RFC 3339 UTC time like 2026-11-25T12:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise BadInput(f"{field} is not a valid date and time") from exc
    return parsed


def enum(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadInput(f"{field} must be one of {', '.join(allowed)}")
    return str(value)


def hex_list(value: Any, field: str, *, max_items: int) -> list[str]:
    if not isinstance(value, list) or len(value) > max_items:
        raise BadInput(f"{field} must be a JSON array of at most {max_items} hashes")
    return [hex64(item, f"{field}[{i}]") for i, item in enumerate(value)]
