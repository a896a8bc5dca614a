"""One reading of JSON for everything that enters: events, REST bodies, proofs.

Parsers disagree on duplicate keys (first or last wins), on ``NaN`` and
``Infinity``, on integers beyond 2**53, on lone surrogates and on invalid
UTF-8; a signer and a reader that disagree can be shown different data
under one signature. :func:`loads` refuses all of these, each with its own
:class:`~gateway.errors.JsonRefused` code, so that what is accepted means
one thing to every conforming parser (the I-JSON profile, RFC 7493). It
also enforces :class:`JsonLimits` (depth, total size, number of keys,
string length) and never raises ``RecursionError``: a 100,000-deep
document is refused as :class:`~gateway.errors.JsonTooDeep`.

:func:`check_limits` applies the same limits to a value already in memory
(the member client before it signs, the store before it writes, the proof
builder): what one side accepts, the others accept too.

This module imports nothing of the gateway but its error types, so the
client library and the verifier use it without the server.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any, Final

from gateway.errors import (
    JsonDuplicateKey,
    JsonIntegerOutOfRange,
    JsonInvalidUtf8,
    JsonLoneSurrogate,
    JsonNonFiniteNumber,
    JsonStringTooLong,
    JsonSyntaxError,
    JsonTooDeep,
    JsonTooLarge,
    JsonTooManyKeys,
)

MAX_SAFE_INTEGER: Final = 2**53 - 1
# 2**53 - 1 has 16 digits; a longer literal is refused before int() reads it
# (which would also stop a 100,000-digit literal from costing quadratic time).
_MAX_INT_CHARS: Final = 17
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


@dataclasses.dataclass(frozen=True, slots=True)
class JsonLimits:
    """The bounds a JSON value must stay within.

    ``max_depth`` counts nested objects and arrays (``{}`` is 1, ``[[1]]``
    is 2, a scalar is 0); ``max_bytes`` is the UTF-8 size of the text;
    ``max_keys`` the object members in total, at every depth;
    ``max_string`` the length of every string and key, in code points.
    """

    max_depth: int = 32
    max_bytes: int = 16384
    max_keys: int = 1024
    max_string: int = 8192

    def __post_init__(self) -> None:
        # The reader must stay far from the interpreter's recursion limit
        # (the C scanner recurses once per level).
        if not 1 <= self.max_depth <= 256:
            raise ValueError(f"max_depth must be 1..256, not {self.max_depth}")
        if min(self.max_bytes, self.max_keys, self.max_string) < 1:
            raise ValueError("JSON limits must be positive")

    def around(self, depth: int, keys: int, size: int) -> JsonLimits:
        """These limits for a value wrapped in an envelope of ``depth`` levels,
        ``keys`` members and ``size`` bytes (a wire packet, a proof document)."""
        return dataclasses.replace(
            self,
            max_depth=self.max_depth + depth,
            max_keys=self.max_keys + keys,
            max_bytes=self.max_bytes + size,
        )


EVENT_LIMITS: Final = JsonLimits()
"""The protocol's limits on an event's payload: the most any gateway accepts
and what every verifier accepts (docs/proof-format.md, docs/security.md)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 40 else key[:40] + "…"
                raise JsonDuplicateKey(f"duplicate key {shown!r} in a JSON object")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise JsonNonFiniteNumber(f"{name} is not a JSON number: send a finite number or a string")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:24] + "…"
        raise JsonNonFiniteNumber(f"the number {shown} is too large for a double")
    return value


def _int(text: str) -> int:
    if len(text) <= _MAX_INT_CHARS:
        value = int(text)
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    shown = text if len(text) <= 24 else text[:24] + "…"
    raise JsonIntegerOutOfRange(f"the integer {shown} is beyond ±(2^53 − 1): send it as a string")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float, parse_int=_int
)


def loads(data: bytes | bytearray | memoryview | str, limits: JsonLimits = EVENT_LIMITS) -> Any:
    """Parse ``data`` strictly and check it against ``limits``.

    Returns plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
    values. Raises a :class:`~gateway.errors.JsonRefused` subclass, never
    ``ValueError``, ``UnicodeDecodeError`` or ``RecursionError``.
    """
    if isinstance(data, str):
        if len(data) > limits.max_bytes:  # each character is at least one byte
            raise JsonTooLarge(f"the JSON text is over {limits.max_bytes} bytes")
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:
            raise JsonLoneSurrogate("the JSON text holds a lone surrogate") from None
        text = data
    else:
        raw = bytes(data)
        size = len(raw)
        if size > limits.max_bytes:
            raise JsonTooLarge(f"the JSON text is {size} bytes; the limit is {limits.max_bytes}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInvalidUtf8(
                f"the JSON text is not valid UTF-8 (byte {exc.start})", at=exc.start
            ) from None
    if size > limits.max_bytes:
        raise JsonTooLarge(f"the JSON text is {size} bytes; the limit is {limits.max_bytes}")
    if text[:1] == "\ufeff":
        raise JsonSyntaxError("the JSON text starts with a byte order mark", at=0)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(f"not JSON: {exc.msg} at offset {exc.pos}", at=exc.pos) from None
    except RecursionError:
        raise JsonTooDeep(
            f"the JSON text is nested deeper than {limits.max_depth} levels"
        ) from None
    check_limits(value, limits)
    return value


def check_limits(value: Any, limits: JsonLimits = EVENT_LIMITS) -> None:
    """Check a value in memory against ``limits`` and the strict rules.

    Refuses what :func:`loads` refuses (a lone surrogate, a non-finite
    float, an integer beyond ±(2**53 − 1), a non-string key, a type JSON
    has not) except the byte size, which depends on the serialisation: the
    caller checks the size of the bytes it signs or stores. Iterative, so a
    value nested 100,000 deep is refused, not a ``RecursionError``.
    """
    keys = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        t = type(v)
        if t is str:
            _check_string(v, limits)
        elif t is dict:
            depth += 1
            if depth > limits.max_depth:
                raise JsonTooDeep(f"nested deeper than {limits.max_depth} levels")
            keys += len(v)
            if keys > limits.max_keys:
                raise JsonTooManyKeys(f"more than {limits.max_keys} object keys in total")
            for k, item in v.items():
                if type(k) is not str:
                    raise JsonSyntaxError(f"object key {k!r} is not a string")
                _check_string(k, limits)
                stack.append((item, depth))
        elif t is list:
            depth += 1
            if depth > limits.max_depth:
                raise JsonTooDeep(f"nested deeper than {limits.max_depth} levels")
            stack.extend((item, depth) for item in v)
        elif t is int:
            if not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                raise JsonIntegerOutOfRange("an integer is beyond ±(2^53 − 1): send it as a string")
        elif t is float:
            if not math.isfinite(v):
                raise JsonNonFiniteNumber(f"{v} is not a JSON number")
            if v.is_integer() and abs(v) > MAX_SAFE_INTEGER:
                # RFC 8785 writes 4.36e16 as 43627692630123544: read back, that is an
                # integer beyond 2**53, so the stored event could not be served.
                raise JsonIntegerOutOfRange(
                    f"the number {v!r} is a whole number beyond ±(2^53 − 1): send it as a string"
                )
        elif not (v is None or t is bool):
            raise JsonSyntaxError(f"a {t.__name__} is not a JSON value")


def _check_string(s: str, limits: JsonLimits) -> None:
    if len(s) > limits.max_string:
        raise JsonStringTooLong(
            f"a string of {len(s)} characters; the limit is {limits.max_string}"
        )
    if not s.isascii() and _SURROGATE.search(s) is not None:
        raise JsonLoneSurrogate("a string holds a lone UTF-16 surrogate")
