"""A minimal Socket.IO-over-WebSocket client on a raw TCP socket whose reading its caller
controls (a real client library reads eagerly, so it cannot play a reader that stops),
and cheap enough to hold thousands of connections in one process. Only what the load
tests and ``connections.py`` need: connect with a token, send events with an ack id,
read server frames. Here, not under ``tests/``, because benchmarks import nothing from
there; ``tests/load`` imports it from here."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from typing import Any

import orjson


class RawSocketIO:
    """One raw connection; ``reader`` is only read when the caller calls :meth:`frame`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, token: str, rcvbuf: int = 4096) -> RawSocketIO:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer, so a reader that stops is seen by the server soon.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        client = cls(reader, writer)
        _, data = await client.frame()
        assert data.startswith(b"0"), data  # Engine.IO open
        client.send_text("40" + orjson.dumps({"token": token}).decode())
        _, data = await client.frame()
        assert data.startswith(b"40"), data  # Socket.IO connect accepted
        return client

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes((0x81, 0x80 | n))
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    def emit(self, name: str, data: Any, ack_id: int) -> None:
        self.send_text("42" + str(ack_id) + orjson.dumps([name, data]).decode())

    async def frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next server frame ``(opcode, payload)``; pings are answered."""
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            data = await self.reader.readexactly(n)
            if b0 & 0x0F == 0x1 and data == b"2":  # Engine.IO ping
                self.send_text("3")
                continue
            return b0 & 0x0F, data

    async def packet(self, timeout: float = 10.0) -> tuple[str, Any]:
        """The next frame as ``("event", [name, data])``, ``("ack", [id, body])``,
        ``("close", status)`` or ``("other", payload)``."""
        opcode, data = await self.frame(timeout)
        if opcode == 0x8:
            return "close", struct.unpack("!H", data[:2])[0] if data else None
        if data.startswith(b"42"):
            return "event", orjson.loads(data[2:])
        if data.startswith(b"43"):
            i = 2
            while data[i : i + 1].isdigit():
                i += 1
            return "ack", [int(data[2:i]), orjson.loads(data[i:])[0]]
        return "other", data

    async def packets(self, timeout: float = 10.0) -> list[tuple[str, Any]]:
        """Every packet (see :meth:`packet`) until the server closes."""
        out: list[tuple[str, Any]] = []
        while True:
            try:
                kind, body = await self.packet(timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                return out
            out.append((kind, body))
            if kind == "close":
                return out

    async def until_ack(
        self, ack_id: int, timeout: float = 10.0
    ) -> tuple[list[dict[str, Any]], Any]:
        """The stored events received until the ack ``ack_id``, and that ack's body."""
        events: list[dict[str, Any]] = []
        while True:
            kind, body = await self.packet(timeout)
            if kind == "event" and body[0] == "event":
                events.append(body[1])
            elif kind == "ack" and body[0] == ack_id:
                return events, body[1]

    def close(self) -> None:
        self.writer.close()
