"""Socket.IO v5 / Engine.IO v4 packets, encoded once and framed for WebSocket.

A broadcast is encoded to bytes once; :func:`ws_text_frame` wraps it in an
unmasked WebSocket text frame (server to client frames are never masked,
RFC 6455 §5.1), which is then written unchanged to every recipient.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from typing import Any, Final

import orjson

from gateway import strict_json
from gateway.errors import JsonRefused
from gateway.strict_json import EVENT_LIMITS, JsonLimits

WIRE_LIMITS: Final = EVENT_LIMITS.around(depth=1, keys=16, size=48 * 1024)
"""What the JSON of one client packet may be: an event at the protocol's
limits inside ``["event", …]`` with its signature. The event's own limits,
as configured, are the intake's to check."""


def ws_text_frame(payload: bytes, first: int = 0x81) -> bytes:
    """One final, unmasked, uncompressed WebSocket text frame holding ``payload``
    (``first=0x82``: a binary frame)."""
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def ws_close_frame(status: int, reason: str) -> bytes:
    """An unmasked WebSocket close frame with ``status`` and a short ``reason`` (RFC 6455
    §5.5.1: at most 123 bytes of reason)."""
    payload = struct.pack("!H", status) + reason.encode("utf-8")[:123]
    return bytes((0x88, len(payload))) + payload


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """One Socket.IO packet in both forms a connection may need.

    ``sio`` is the Socket.IO packet text (what Engine.IO's long-polling
    transport carries); ``frame`` is the Engine.IO message (``"4" + sio``)
    already framed for WebSocket.
    """

    sio: str
    frame: bytes


def _pack(sio: bytes) -> Outgoing:
    return Outgoing(sio.decode("utf-8"), ws_text_frame(b"4" + sio))


def event_packet(name: str, data: Any) -> Outgoing:
    """``2["name",data]``: an event for the default namespace."""
    return _pack(b"2" + orjson.dumps([name, data]))


def event_packet_raw(name: str, data_json: bytes) -> Outgoing:
    """Same as :func:`event_packet` for data already encoded as JSON."""
    return _pack(b'2["' + name.encode("ascii") + b'",' + data_json + b"]")


def ack_packet(ack_id: int, data: Any) -> Outgoing:
    """``3<id>[data]``: the answer to a client's emit with acknowledgement."""
    return _pack(b"3" + str(ack_id).encode("ascii") + orjson.dumps([data]))


# The head of an emit as clients write it: ``2<ack id>["event",{"id":"<id>"``.
_EMIT_HEAD = re.compile(r'2(\d{0,15})\["event",')
_FIRST_ID = re.compile(r'\{"id":"([A-Za-z0-9._:@-]{1,128})"[,}]')


@dataclasses.dataclass(frozen=True, slots=True)
class EmitHead:
    """What a refusal needs from an emit, read without parsing its JSON: the ack id
    (digits, empty for none) and the event's id when it is the object's first key,
    in plain characters (``None`` otherwise: the refusal then shows no id)."""

    ack_digits: str
    shown_id: str | None


def emit_head(data: str) -> EmitHead | None:
    """The :class:`EmitHead` of the Socket.IO packet text ``data`` when it is an
    ``event`` emit of the default namespace (``None`` for any other packet). Costs a
    regular expression on the packet's first bytes, not a parse: for refusing at
    once when the gateway is overloaded; the event itself is not trusted from this."""
    head = _EMIT_HEAD.match(data)
    if head is None:
        return None
    first = _FIRST_ID.match(data, head.end())
    digits = head.group(1)
    return EmitHead(
        str(int(digits)) if digits else "",  # as the ack's id is written: no leading zeros
        first.group(1) if first is not None else None,
    )


def refusal_packet(head: EmitHead, error_json: bytes) -> Outgoing:
    """The refusal of the emit ``head``: its ack ``{id, error}``, or an ``error`` event
    ``{...error, id}`` when it asked for no ack; ``error_json`` is the error body's
    JSON object (encoded once for many refusals)."""
    shown = b"null" if head.shown_id is None else b'"' + head.shown_id.encode("ascii") + b'"'
    if head.ack_digits:
        return _pack(
            b"3"
            + head.ack_digits.encode("ascii")
            + b'[{"id":'
            + shown
            + b',"error":'
            + error_json
            + b"}]"
        )
    return _pack(b'2["error",' + error_json[:-1] + b',"id":' + shown + b"}]")


@dataclasses.dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A Socket.IO EVENT packet for the default namespace.

    ``refused`` is set (and ``name`` empty) when the packet is an event whose
    JSON the strict reader refused: the hub answers it with that code.
    """

    name: str
    args: list[Any]
    ack_id: int | None
    refused: JsonRefused | None = None


def parse_event_packet(data: str, limits: JsonLimits = WIRE_LIMITS) -> IncomingEvent | None:
    """Parse ``2[<ack id>]["name", ...]`` (default namespace, text only).

    The JSON is read by :func:`gateway.strict_json.loads`: duplicate keys,
    NaN, Infinity, ``1e400``, integers beyond ±(2**53 − 1), lone surrogates
    and excess depth give an event with ``refused`` set, so the sender gets
    an answer with the code instead of silence. Returns ``None`` for anything
    else (other packet types, namespaces, no array): those go to
    python-socketio's own handling, which refuses what it does not understand.
    """
    if len(data) < 3 or data[0] != "2" or data[1] == "/":
        return None
    i = 1
    while i < len(data) and "0" <= data[i] <= "9":
        i += 1
    if i == len(data) or data[i] != "[" or i - 1 > 15:
        return None
    ack_id = int(data[1:i]) if i > 1 else None
    try:
        decoded = strict_json.loads(data[i:], limits)
    except JsonRefused as exc:
        return IncomingEvent("", [], ack_id, exc)
    if not isinstance(decoded, list) or not decoded or not isinstance(decoded[0], str):
        return None
    return IncomingEvent(decoded[0], decoded[1:], ack_id)
