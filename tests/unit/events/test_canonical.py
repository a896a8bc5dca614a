"""RFC 8785 canonical JSON: golden examples, and the fast path against the reference."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events.canonical import canonical_json, canonical_json_reference
from gateway.events.errors import MalformedEvent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
        # RFC 8785 §3.2.3: keys sorted by UTF-16 code units, nested objects too.
        ({"\u20ac": 1, "\r": 2, "1": 3, "\u00f6": 4}, '{"\\r":2,"1":3,"ö":4,"€":1}'.encode()),
        ({"\U0001f600": 1, "\ufb33": 2}, '{"\U0001f600":1,"\ufb33":2}'.encode()),
        ({"s": '\u0000\u001f"\\/\u2028é'}, b'{"s":"\\u0000\\u001f\\"\\\\/\xe2\x80\xa8\xc3\xa9"}'),
        # RFC 8785 §3.2.2.3 number serialisation (ECMAScript): the reference handles floats.
        ([1.0, 0.5, 1e21, 1e-7, -0.0], b"[1,0.5,1e+21,1e-7,0]"),
        ({"n": 9007199254740991}, b'{"n":9007199254740991}'),
    ],
)
def test_golden(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, {"n": 2**60}, {1: "x"}, "\ud800", b"x"])
def test_values_that_cannot_be_canonical(value: object) -> None:
    with pytest.raises(MalformedEvent):
        canonical_json(value)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(_json)
def test_fast_path_matches_the_reference(value: object) -> None:
    try:
        expected = canonical_json_reference(value)
    except MalformedEvent:
        with pytest.raises(MalformedEvent):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
