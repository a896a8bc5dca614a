"""Socket.IO packets and WebSocket frames built once for every recipient."""

from __future__ import annotations

import struct

import orjson
import pytest

from gateway.stream.frames import (
    EmitHead,
    ack_packet,
    emit_head,
    event_packet,
    event_packet_raw,
    parse_event_packet,
    refusal_packet,
    ws_text_frame,
)


@pytest.mark.parametrize(("size", "header"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_frame_header_lengths(size: int, header: int) -> None:
    frame = ws_text_frame(b"x" * size)
    assert frame[0] == 0x81  # FIN + text, no RSV bits (no compression)
    assert len(frame) == size + header
    if header == 2:
        assert frame[1] == size
    elif header == 4:
        assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size
    else:
        assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size


def test_event_and_ack_packets() -> None:
    out = event_packet("event", {"a": 1})
    assert out.sio == '2["event",{"a":1}]'
    assert out.frame == ws_text_frame(b'42["event",{"a":1}]')
    assert event_packet_raw("event", orjson.dumps({"a": 1})) == out
    ack = ack_packet(17, {"seq": 3, "status": "pending"})
    assert ack.sio == '317[{"seq":3,"status":"pending"}]'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('2["join",{"channel":"c"}]', ("join", [{"channel": "c"}], None)),
        ('25["event",{"id":"x"}]', ("event", [{"id": "x"}], 5)),
        ('2123["a"]', ("a", [], 123)),
    ],
)
def test_parse_event_packets(data: str, expected: tuple[object, ...]) -> None:
    parsed = parse_event_packet(data)
    assert parsed is not None
    assert (parsed.name, parsed.args, parsed.ack_id) == expected


@pytest.mark.parametrize(
    "data",
    [
        "",
        "2",
        "3[1]",
        '2/admin,["a"]',
        "2{}",
        "2[]",
        "2[1]",
        '2١["a"]',
        "2" + "9" * 20 + '["a"]',
    ],
)
def test_other_or_malformed_packets_are_not_parsed(data: str) -> None:
    assert parse_event_packet(data) is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ('2["event",{"id":', "AL1011"),
        ('27["event",{"amount":1,"amount":999}]', "AL1013"),
        ('27["event",{"a":NaN}]', "AL1014"),
        ('27["event",{"a":Infinity}]', "AL1014"),
        ('27["event",{"a":1e400}]', "AL1014"),
        ('27["event",{"a":9007199254740993}]', "AL1015"),
        ('27["event",{"a":"\\ud800"}]', "AL1016"),
        ('27["event",' + "[" * 40 + "]" * 40 + "]", "AL1017"),
        ('27["event","' + "x" * 70_000 + '"]', "AL1018"),
    ],
)
def test_refused_json_is_answered_with_its_code(data: str, code: str) -> None:
    parsed = parse_event_packet(data)
    assert parsed is not None and parsed.refused is not None
    assert parsed.refused.code == code
    assert parsed.ack_id == (7 if data.startswith("27") else None)


@pytest.mark.parametrize(
    ("text", "head"),
    [
        ('2017["event",{"id":"e-1","channel":"c"}]', EmitHead("17", "e-1")),
        ('2["event",{"id":"e1"}]', EmitHead("", "e1")),
        ('25["event",{"channel":"c","id":"e1"}]', EmitHead("5", None)),  # id not first
        ('25["event",{"id":"a\\"b"}]', EmitHead("5", None)),  # not plain characters
        ('25["event","not an object"]', EmitHead("5", None)),
        ('25["join",{"channel":"c"}]', None),
        ('2/admin,5["event",{"id":"e1"}]', None),
        ("3[1]", None),
    ],
)
def test_an_emit_s_head_is_read_without_its_json(text: str, head: EmitHead | None) -> None:
    assert emit_head(text) == head


def test_a_refusal_from_the_head_is_the_refusal_the_hub_writes() -> None:
    error = {"code": "AL1607", "message": "busy", "retry_after": 100}
    error_json = orjson.dumps(error)
    for head in (EmitHead("17", "e-1"), EmitHead("17", None)):
        body = {"id": head.shown_id, "error": error}
        assert refusal_packet(head, error_json) == ack_packet(17, body)
    no_ack = refusal_packet(EmitHead("", "e1"), error_json)
    assert no_ack == event_packet("error", {**error, "id": "e1"})
