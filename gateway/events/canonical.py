"""RFC 8785 (JCS) canonical JSON: the exact bytes a member signs.

Two implementations: the ``rfc8785`` package (the reference, pure Python)
and a fast path through ``orjson`` with sorted keys, used when the value can
only serialise one way under both: no floats, integers within ±(2**53 − 1),
and no object key beyond the Basic Multilingual Plane (where UTF-16 order,
which RFC 8785 sorts by, differs from code-point order). orjson escapes
strings exactly as RFC 8785 requires; the unit tests check the two paths
against each other under hypothesis.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import rfc8785

from gateway.events.errors import MalformedEvent

_SAFE: Final = 2**53 - 1
_BMP_MAX: Final = "\uffff"


def _fast_path_applies(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -_SAFE <= v <= _SAFE:
                continue
            return False
        if t is dict:
            for k, item in v.items():
                if type(k) is not str or (not k.isascii() and max(k) > _BMP_MAX):
                    return False
                stack.append(item)
            continue
        if t is list:
            stack.extend(v)
            continue
        return False
    return True


def canonical_json_reference(value: Any) -> bytes:
    """RFC 8785 through the reference implementation (slow, obviously right)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as exc:
        raise MalformedEvent(f"event cannot be canonicalised (RFC 8785): {exc}") from None
    except RecursionError:
        # The intake's depth limit refuses such values first; never let one escape.
        raise MalformedEvent("event is nested too deep to canonicalise") from None


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 serialisation of ``value``.

    Raises :class:`MalformedEvent` when ``value`` holds something JSON cannot
    carry canonically (non-finite floats, integers beyond ±2**53, non-string
    keys, lone surrogates).
    """
    if _fast_path_applies(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference say what is wrong
    return canonical_json_reference(value)
