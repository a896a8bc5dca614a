"""The one strict JSON reader: every refusal has its code; what it accepts, json reads alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import (
    JsonDuplicateKey,
    JsonIntegerOutOfRange,
    JsonInvalidUtf8,
    JsonLoneSurrogate,
    JsonNonFiniteNumber,
    JsonRefused,
    JsonStringTooLong,
    JsonSyntaxError,
    JsonTooDeep,
    JsonTooLarge,
    JsonTooManyKeys,
)
from gateway.strict_json import EVENT_LIMITS, JsonLimits, check_limits, loads

BIG = JsonLimits(max_bytes=10**7)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b'{"amount":1,"amount":999}', JsonDuplicateKey),
        (b'{"a":{"b":[{"seq":1,"seq":2}]}}', JsonDuplicateKey),
        (b"NaN", JsonNonFiniteNumber),
        (b'{"x":Infinity}', JsonNonFiniteNumber),
        (b"[-Infinity]", JsonNonFiniteNumber),
        (b"1e400", JsonNonFiniteNumber),
        (b"-1E+400", JsonNonFiniteNumber),
        (b"9007199254740992", JsonIntegerOutOfRange),
        (b"-9007199254740992", JsonIntegerOutOfRange),
        (b"1" * 5000, JsonIntegerOutOfRange),
        (b"4.3627692630123544e16", JsonIntegerOutOfRange),
        (b'"\\ud800"', JsonLoneSurrogate),
        (b'{"\\udfff":1}', JsonLoneSurrogate),
        (b'["\\ude00\\ud83d"]', JsonLoneSurrogate),
        (b'"\xff"', JsonInvalidUtf8),
        (b'"\xed\xa0\x80"', JsonInvalidUtf8),  # a surrogate encoded as UTF-8
        (b"[" * 100_000, JsonTooDeep),
        (b"[" * 33 + b"]" * 33, JsonTooDeep),
        (b'{"a":', JsonSyntaxError),
        (b"[1] [2]", JsonSyntaxError),
        (b"\xef\xbb\xbf{}", JsonSyntaxError),
        (b"", JsonSyntaxError),
    ],
)
def test_each_refusal_has_its_code(text: bytes, error: type[JsonRefused]) -> None:
    with pytest.raises(error) as caught:
        loads(text, BIG)
    assert caught.value.code.startswith("AL10")
    # The same refusal whether the text arrives as bytes or as a str.
    try:
        as_text = text.decode("utf-8")
    except UnicodeDecodeError:
        return
    with pytest.raises(error):
        loads(as_text, BIG)


def test_limits_on_size_keys_and_strings() -> None:
    limits = JsonLimits(max_depth=4, max_bytes=64, max_keys=3, max_string=5)
    assert loads(b'{"a":[1,{"b":"12345"}]}', limits) == {"a": [1, {"b": "12345"}]}
    with pytest.raises(JsonTooLarge):
        loads(b'"' + b"x" * 70 + b'"', limits)
    with pytest.raises(JsonTooManyKeys):
        loads(b'{"a":{"b":{"c":1,"d":2}}}', limits)
    with pytest.raises(JsonStringTooLong):
        loads(b'["123456"]', limits)
    with pytest.raises(JsonStringTooLong):
        loads(b'{"123456":1}', limits)
    # Exactly at the depth limit is accepted; one more level is not.
    assert loads(b"[[[[1]]]]", limits) == [[[[1]]]]
    with pytest.raises(JsonTooDeep):
        loads(b"[[[[[1]]]]]", limits)


def test_check_limits_refuses_values_in_memory_without_recursing() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(JsonTooDeep):
        check_limits(deep)
    for value, error in [
        (float("nan"), JsonNonFiniteNumber),
        (2**53, JsonIntegerOutOfRange),
        (4.3627692630123544e16, JsonIntegerOutOfRange),  # JCS writes it as an integer
        (1e300, JsonIntegerOutOfRange),
        ("\ud800", JsonLoneSurrogate),
        ({1: "x"}, JsonSyntaxError),
        ({"a": b"x"}, JsonSyntaxError),
    ]:
        with pytest.raises(error):
            check_limits(value)
    check_limits({"a": [1, 2.5, None, True, "é😀"]})


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda f: not (f.is_integer() and abs(f) > 2**53 - 1)
    )
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_accepted_values_read_the_same_as_the_standard_library(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text, BIG) == json.loads(text)
    assert loads(text.encode("utf-8"), BIG) == json.loads(text)


@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))
def test_any_input_is_refused_with_a_code_or_parsed(data: bytes) -> None:
    try:
        loads(data, EVENT_LIMITS)
    except JsonRefused as exc:
        assert exc.code.startswith("AL10")
