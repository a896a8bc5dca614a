"""The python-socketio adapter: the only module that touches socketio and engineio.

python-socketio keeps doing what it does well (Engine.IO handshake,
long-polling, upgrade, ping/pong, namespace connect with an auth payload),
so any standard Socket.IO v4 client works. Three things are replaced, for
speed, while keeping the wire format:

- WebSockets are opened with compression off (aiohttp would otherwise
  negotiate permessage-deflate and deflate every frame), and read by a loop
  without Engine.IO's task and ``wait_for`` per incoming message;
- EVENT packets of the default namespace are parsed here and handed to the
  :class:`~gateway.stream.hub.Hub` inline, without python-socketio's task
  per event;
- outgoing packets to upgraded WebSockets are written by the hub as
  pre-framed bytes straight to the transport, instead of through a task
  and a queue per recipient. Long-polling clients still use Engine.IO's
  queue;
- a socket opened as a WebSocket (not upgraded from long-polling) has no
  Engine.IO writer task at all: Engine.IO's own packets (pings, the close)
  are framed and written at once, and its pings are timers instead of a
  task sleeping per connection, which is most of what an idle connection
  held beyond aiohttp's own state (docs/overload.md).

Everything that reaches into Engine.IO's internals (its socket's queue and
upgrade flags, its aiohttp driver, aiohttp's writer transport) is in
:class:`EngineIOInternals`, which refuses to start on any python-engineio
but the pinned one (:class:`~gateway.stream.errors.UnsupportedEngineIO`,
AL1004).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import socketio
from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp

from gateway import strict_json
from gateway.auth.errors import AuthError
from gateway.clock import now_ms
from gateway.config import GatewaySettings
from gateway.errors import JsonRefused
from gateway.stream.errors import UnsupportedEngineIO
from gateway.stream.frames import WIRE_LIMITS, Outgoing, ws_close_frame, ws_text_frame
from gateway.stream.hub import Connection, Hub
from gateway.stream.protocol import SOCKETIO_PATH

log = logging.getLogger(__name__)

# (Engine.IO session id, message, messages of the same socket read and waiting behind
# it) -> seconds to leave the socket unread (Hub.dispatch_text: a sender over budget)
FastHandler = Callable[[str, Any, int], Awaitable[float]]
# Messages one connection may have handled before its reader lets others run.
_FAIR_SHARE = 16

# 1013 "try again later" (RFC 6455 §7.4.1 registry): the client may reconnect.
_SLOW_CLOSE = ws_close_frame(1013, "slow consumer")


async def _serve_websocket(
    eio_socket: Any, wrapper: Any, ws: web.WebSocketResponse, fast: FastHandler
) -> None:
    """Engine.IO's WebSocket loop, without a task and a ``wait_for`` per message.

    Mirrors ``engineio.async_socket.AsyncSocket._websocket_handler`` (probe
    and upgrade, a writer draining Engine.IO's queue, the reader); Socket.IO
    events (``42…``) go straight to ``fast(sid, data)``.
    """
    server = eio_socket.server
    timeout = server.ping_interval + server.ping_timeout
    limit = server.max_http_buffer_size

    async def receive() -> Any:
        msg = await ws.receive(timeout=timeout)
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        data = msg.data
        if len(data) > limit:
            return None
        return data

    upgrade = bool(eio_socket.connected)
    if upgrade:
        # Upgrade from long-polling: probe, then the UPGRADE packet.
        eio_socket.upgrading = True
        try:
            data = await receive()
        except (TimeoutError, OSError):
            eio_socket.upgrading = False
            return
        probe = eio_packet.Packet(encoded_packet=data) if data is not None else None
        if probe is None or probe.packet_type != eio_packet.PING or probe.data != "probe":
            eio_socket.upgrading = False
            return
        await wrapper.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await eio_socket.queue.put(eio_packet.Packet(eio_packet.NOOP))
        try:
            data = await receive()
        except (TimeoutError, OSError):
            eio_socket.upgrading = False
            return
        done = eio_packet.Packet(encoded_packet=data) if data is not None else None
        if done is None or done.packet_type != eio_packet.UPGRADE:
            eio_socket.upgrading = False
            return
        eio_socket.upgraded = True
        eio_socket.upgrading = False
    else:
        eio_socket.connected = True
        eio_socket.upgraded = True

    async def writer() -> None:
        while True:
            try:
                packets = await eio_socket.poll()
            except eio_exceptions.QueueEmpty:
                break
            if not packets:
                break
            try:
                for pkt in packets:
                    await wrapper.send(pkt.encode())
            except Exception:
                break
        await ws.close()

    transport = None if upgrade else _transport_of(ws)
    if transport is not None:
        # Opened as a WebSocket: no writer task, Engine.IO's own packets are written
        # at once (see _DirectQueue), and its pings are timers, not tasks.
        _go_direct(eio_socket, transport)
        writer_task = None
    else:
        writer_task = asyncio.ensure_future(writer())
    sid = eio_socket.sid
    handled = 0
    try:
        while True:
            try:
                data = await receive()
            except (TimeoutError, OSError, RuntimeError):
                break
            if data is None:
                break
            if isinstance(data, str) and data[:2] == "42" and data[2:3] != "/":
                hold = await fast(sid, data[1:], _unread(ws))
                handled += 1
                if hold > 0:
                    # Over its budget: unread, its next messages wait in the socket
                    # and TCP slows the sender, at no cost to anyone else.
                    await asyncio.sleep(hold)
                elif handled % _FAIR_SHARE == 0:
                    # receive() does not yield while this socket has data buffered:
                    # without this, one flooding client holds the loop for its whole
                    # backlog and every other member waits (issue 19 item 5).
                    await asyncio.sleep(0)
                continue
            try:
                await eio_socket.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                log.exception("unexpected error on an Engine.IO packet")
    finally:
        if writer_task is not None:
            await eio_socket.queue.put(None)
            await writer_task
        else:
            with contextlib.suppress(Exception):
                await ws.close()
        await eio_socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


def _transport_of(ws: web.WebSocketResponse) -> asyncio.WriteTransport | None:
    """The socket under aiohttp's WebSocket writer (an internal: ``None`` when absent)."""
    transport: asyncio.WriteTransport | None = getattr(
        getattr(ws, "_writer", None), "transport", None
    )
    return transport


class _DirectQueue:
    """Engine.IO's outgoing queue for a socket opened as a WebSocket, without a task.

    Engine.IO's writer task waits on an ``asyncio.Queue`` (and, inside ``poll``, on
    a second task per wait) for the few packets Engine.IO sends itself once the hub
    writes everything else directly: pings and the close. Idle, that was two tasks,
    a queue and a timer per connection. Here a packet put is framed and written at
    once, in order with the hub's direct writes; ``None`` (the writer's end) is the
    reader's to act on, so it is ignored.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def put_nowait(self, pkt: Any) -> None:
        if pkt is None or self._transport.is_closing():
            return
        data = pkt.encode()
        if isinstance(data, str):
            self._transport.write(ws_text_frame(data.encode("utf-8")))
        else:
            self._transport.write(ws_text_frame(data, first=0x82))

    async def put(self, pkt: Any) -> None:
        self.put_nowait(pkt)

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    def task_done(self) -> None:
        return None

    async def join(self) -> None:
        return None

    async def get(self) -> Any:
        # Only a long-polling request reads the queue; on a WebSocket it gets nothing
        # (Engine.IO's poll() answers a timeout with "no packets").
        raise TimeoutError


def _go_direct(eio_socket: Any, transport: asyncio.WriteTransport) -> None:
    """Swap Engine.IO's queue for a :class:`_DirectQueue` (writing out what it holds,
    in order) and its ping task for a timer."""
    queued = eio_socket.queue
    direct = _DirectQueue(transport)
    while not queued.empty():
        direct.put_nowait(queued.get_nowait())
        queued.task_done()
    eio_socket.queue = direct
    eio_socket.schedule_ping = functools.partial(_schedule_ping, eio_socket)


def _schedule_ping(eio_socket: Any) -> None:
    # Engine.IO's schedule_ping, with a timer instead of a task sleeping ping_interval.
    if eio_socket.last_ping:
        eio_socket.last_ping = None
        asyncio.get_running_loop().call_later(
            eio_socket.server.ping_interval, _send_ping, eio_socket
        )


def _send_ping(eio_socket: Any) -> None:
    # Engine.IO's _send_ping after its sleep (send()'s ping-timeout check passes
    # trivially right after last_ping is set). Engine.IO compares last_ping with
    # time.time(): the gateway's clock in seconds is that clock.
    if not eio_socket.closing and not eio_socket.closed:
        eio_socket.last_ping = now_ms() / 1000
        eio_socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))


def _unread(ws: web.WebSocketResponse) -> int:
    """Messages aiohttp already read from this WebSocket and not yet handed out (its
    reader's queue, an internal: 0 when an aiohttp without it is installed)."""
    reader = getattr(ws, "_reader", None)
    buffered = getattr(reader, "_buffer", None)
    return len(buffered) if buffered is not None else 0


class EngineIOInternals:
    """The adapter's workarounds that depend on python-engineio's internals.

    Built once per server; raises :class:`UnsupportedEngineIO` when the
    installed python-engineio is not :attr:`PINNED_VERSION`, because each
    method below relies on attributes Engine.IO does not document
    (``AsyncSocket.queue/upgraded/upgrading``, ``server._async``, the aiohttp
    driver's ``_sock``, aiohttp's ``WebSocketResponse._writer.transport``).
    """

    PINNED_VERSION: ClassVar[str] = "4.15.1"

    def __init__(self, installed: str | None = None) -> None:
        self.check_version(installed)
        # Engine.IO session id → its open aiohttp WebSocket.
        self.sockets: dict[str, web.WebSocketResponse] = {}

    @classmethod
    def check_version(cls, installed: str | None = None) -> None:
        """Raise :class:`UnsupportedEngineIO` unless ``installed`` (default: the
        installed distribution's version) is the pinned one."""
        found = (
            installed if installed is not None else importlib.metadata.version("python-engineio")
        )
        if found != cls.PINNED_VERSION:
            raise UnsupportedEngineIO(
                f"python-engineio {found} is installed; the Socket.IO adapter's workarounds "
                f"are written against {cls.PINNED_VERSION}: install that version "
                "(pyproject.toml pins it), or review gateway/stream/sio.py for the new one"
            )

    def install(self, server: socketio.AsyncServer, fast: FastHandler) -> None:
        """Replace Engine.IO's aiohttp WebSocket driver by the lean one, feeding ``fast``."""
        server.eio._async = {**server.eio._async, "websocket": _make_driver(self.sockets, fast)}

    def direct_transport(
        self, server: socketio.AsyncServer, eio_sid: str
    ) -> asyncio.WriteTransport | None:
        """The socket's transport once its WebSocket is fully upgraded and Engine.IO's
        queue is empty (so nothing queued earlier can arrive after a direct write)."""
        ws = self.sockets.get(eio_sid)
        eio_socket = server.eio.sockets.get(eio_sid)
        if ws is None or eio_socket is None:
            return None
        if not eio_socket.upgraded or eio_socket.upgrading or not eio_socket.queue.empty():
            return None
        writer = getattr(ws, "_writer", None)
        transport: asyncio.WriteTransport | None = getattr(writer, "transport", None)
        return transport

    def enqueue(self, server: socketio.AsyncServer, eio_sid: str, sio_text: str) -> int | None:
        """Put a Socket.IO packet on Engine.IO's queue; returns the packets now queued,
        ``None`` when the socket is gone."""
        eio_socket = server.eio.sockets.get(eio_sid)
        if eio_socket is None or eio_socket.closed:
            return None
        eio_socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=sio_text))
        queued: int = eio_socket.queue.qsize()
        return queued


def _make_driver(registry: dict[str, web.WebSocketResponse], fast: FastHandler) -> type:
    class GatewayWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
        """engineio's aiohttp driver: compression off, socket registered, lean reader."""

        async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False
            )
            await self._sock.prepare(request)
            self.environ = environ
            eio_socket = getattr(self.handler, "__self__", None)
            if eio_socket is None:  # not engineio's socket handler: keep its behaviour
                await self.handler(self)
                return self._sock
            sid = eio_socket.sid
            registry[sid] = self._sock
            try:
                await _serve_websocket(eio_socket, self, self._sock, fast)
            finally:
                if registry.get(sid) is self._sock:
                    del registry[sid]
            return self._sock

    return GatewayWebSocket


class _Refused(ValueError):
    """A packet python-socketio decodes whose JSON the strict reader refused."""

    def __init__(self, refused: JsonRefused) -> None:
        super().__init__(str(refused))
        self.refused = refused


class _StrictJson:
    """The ``json`` module python-socketio decodes the packets it parses itself with
    (connect auth payloads, anything off the fast path): the gateway's one strict
    reader, so no packet means one thing here and another in the hub."""

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        return json.dumps(value, **options)

    @staticmethod
    def loads(text: str | bytes, **_options: Any) -> Any:
        try:
            return strict_json.loads(text, WIRE_LIMITS)
        except JsonRefused as exc:
            # python-socketio treats a ValueError as a malformed packet.
            raise _Refused(exc) from None


class _StrictPacket(socketio.packet.Packet):  # type: ignore[misc]
    """python-socketio's packet with :class:`_StrictJson`, for this server only
    (setting ``json=`` on the server would change every Packet in the process)."""

    json = _StrictJson


class GatewaySocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server with the hub's fast paths (see the module docstring)."""

    def __init__(self, hub: Hub, settings: GatewaySettings) -> None:
        # First, so another python-engineio fails before anything is patched.
        self._internals = EngineIOInternals()
        super().__init__(
            async_mode="aiohttp",
            serializer=_StrictPacket,
            cors_allowed_origins=[],
            # A signed event plus its framing; anything larger is refused by
            # Engine.IO before it is parsed.
            # Twice the JSON the strict reader takes, so an oversized event still
            # gets its AL1018 answer; beyond this the socket is closed (1009).
            max_http_buffer_size=max(2 * WIRE_LIMITS.max_bytes, settings.max_payload_bytes * 4),
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            logger=False,
            engineio_logger=False,
        )
        self.hub = hub
        self._slow_grace_s = settings.slow_consumer_grace_ms / 1000
        self._eio_of: dict[str, str] = {}
        self._internals.install(self, self._handle_eio_message)
        self.on("connect", self._on_connect)
        self.on("disconnect", self._on_disconnect)
        hub.set_closer(self._close)

    # -- inbound --------------------------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: Any, unread: int = 0) -> float:
        """One Engine.IO message; returns how long to leave the socket unread (see
        :meth:`Hub.dispatch_text`)."""
        if not isinstance(data, str | bytes):
            # Engine.IO JSON-decodes a message that looks like JSON ("4true" gives True);
            # a Socket.IO packet is text or a binary attachment, so this is not one.
            return 0.0
        if isinstance(data, str) and data[:1] == "2" and data[1:2] != "/":
            # Malformed text events are dropped there: there is no ack id to answer.
            return self.hub.dispatch_text(eio_sid, data, time.perf_counter(), unread)
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _Refused as exc:
            if isinstance(data, str) and data[:1] == "0":
                # A connect whose auth payload the strict reader refused: say why,
                # as python-socketio says any refused connect.
                await self._send_packet(
                    eio_sid,
                    self.packet_class(
                        socketio.packet.CONNECT_ERROR,
                        data={"message": exc.refused.message, "data": {"code": exc.refused.code}},
                    ),
                )
        except ValueError:
            # A malformed or binary packet: python-socketio refuses it; drop it
            # rather than let Engine.IO log a traceback per bad packet.
            pass
        return 0.0

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        request = environ.get("aiohttp.request")
        address = (request.remote if request is not None else None) or "unknown"
        try:
            conn = await self.hub.connect(eio_sid, sid, auth, address, self._fallback)
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        self._eio_of[sid] = eio_sid
        self._upgrade(conn)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        eio_sid = self._eio_of.pop(sid, None)
        if eio_sid is not None:
            self.hub.disconnected(eio_sid)

    # -- outbound -------------------------------------------------------------------------

    def _upgrade(self, conn: Connection) -> bool:
        """Switch ``conn`` to direct writes once its WebSocket is fully upgraded.

        Only when Engine.IO's queue is empty, so nothing sent earlier through
        it can arrive after a directly written packet.
        """
        transport = self._internals.direct_transport(self, conn.eio_sid)
        if transport is None:
            return False
        conn.transport = transport
        return True

    def _fallback(self, conn: Connection, out: Outgoing) -> int:
        if self._upgrade(conn):
            return conn.write(out)
        queued = self._internals.enqueue(self, conn.eio_sid, out.sio)
        if queued is None:
            conn.closed = True
            return 0
        # Engine.IO's queue counts packets, not bytes: estimate its backlog from
        # this packet's size, so the slow-consumer bound holds for long-polling too.
        return queued * len(out.frame)

    async def _close(self, conn: Connection, abort: bool) -> None:
        transport = conn.transport
        if abort and transport is not None:
            # A slow consumer: no more reads from it, what is buffered (its
            # slow_consumer notice last) and a close frame flushed, and the socket
            # cut after the grace period if it still does not read, so its
            # backlog is held for a bounded time only (Engine.IO's disconnect
            # would wait for the backlog to drain).
            transport.write(_SLOW_CLOSE)
            transport.close()
            asyncio.get_running_loop().call_later(self._slow_grace_s, transport.abort)
            return
        try:
            await self.disconnect(conn.sid)
        except (KeyError, ValueError, OSError):
            log.debug("client %s was already gone", conn.sid)


def attach(app: web.Application, server: GatewaySocketServer) -> None:
    """Serve Socket.IO on ``/socket.io/`` of ``app``."""
    server.attach(app, socketio_path=SOCKETIO_PATH)


async def shutdown(server: GatewaySocketServer) -> None:
    """Disconnect every client and stop Engine.IO's background tasks."""
    await server.shutdown()
    await asyncio.sleep(0)
