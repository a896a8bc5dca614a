"""Socket.IO packets and WebSocket frames built once for every recipient."""

from __future__ import annotations

import struct

import orjson
import pytest

from gateway.stream.frames import (
    ack_packet,
    event_packet,
    event_packet_raw,
    parse_event_packet,
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
        "2[",
        "2{}",
        "2[]",
        "2[1]",
        '2١["a"]',
        "2" + "9" * 20 + '["a"]',
    ],
)
def test_other_or_malformed_packets_are_not_parsed(data: str) -> None:
    assert parse_event_packet(data) is None
